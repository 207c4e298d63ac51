package codec

import "github.com/sessiond/sessiond"

// EncodeSessionAt writes a session in an earlier format (1 to 3), as the
// versions of sessiond that wrote it did, for tests that read or migrate
// old records; a version 2 record carries conns inside, the others drop
// them. Fields that the format did not have are left out.
func EncodeSessionAt(version byte, s *sessiond.Session, conns []sessiond.Connection) []byte {
	e := encoder{b: []byte{version}}
	e.str(s.ID)
	e.str(s.Subject)
	e.str(s.Policy)
	e.str(s.Device.ID)
	e.str(s.Device.Type)
	e.str(s.Device.Name)
	e.str(s.Device.IP)
	e.str(s.Device.UserAgent)
	e.bytes(s.Metadata)
	e.uint(uint64(s.State))
	e.str(string(s.EndReason))
	e.time(s.CreatedAt)
	e.time(s.LastActive)
	e.time(s.ExpiresAt)
	e.int(int64(s.IdleTimeout))
	e.time(s.RotatedAt)
	e.time(s.EndedAt)
	e.uint(s.Version)
	e.uint(s.Generation)
	e.b = append(e.b, s.TokenHash[:]...)
	e.b = append(e.b, s.PrevTokenHash[:]...)
	e.time(s.PrevTokenUntil)
	switch version {
	case sessionV2:
		e.time(s.DisconnectedAt)
		e.uint(uint64(len(conns)))
		for i := range conns {
			e.conn(&conns[i])
		}
	case SessionV3:
		e.time(s.DisconnectedAt)
		e.uint(uint64(len(s.RetiredTokens)))
		for _, h := range s.RetiredTokens {
			e.b = append(e.b, h[:]...)
		}
	}
	return e.b
}
