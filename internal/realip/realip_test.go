package realip

import (
	"net/http/httptest"
	"testing"
)

func mustPrefixes(t *testing.T, list ...string) *Resolver {
	t.Helper()
	p, err := ParsePrefixes(list)
	if err != nil {
		t.Fatal(err)
	}
	return New(p)
}

func TestClientIP(t *testing.T) {
	proxies := mustPrefixes(t, "10.0.0.0/8", "2001:db8:a::/48", "192.0.2.9")
	for _, tc := range []struct {
		name   string
		rs     *Resolver
		remote string
		xff    []string
		want   string
	}{
		{"no proxies: the peer", New(nil), "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"nil resolver: the peer", nil, "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"untrusted peer: its XFF is ignored", proxies, "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted peer: the entry it appended", proxies, "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a forged left part is skipped", proxies, "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", proxies, "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9, 192.0.2.9"}, "198.51.100.1"},
		{"several header lines are one list", proxies, "10.1.2.3:4000", []string{"1.1.1.1", "198.51.100.1, 10.0.0.1"}, "198.51.100.1"},
		{"trusted peer without XFF: the peer", proxies, "10.1.2.3:4000", nil, "10.1.2.3"},
		{"all hops trusted: the farthest", proxies, "10.1.2.3:4000", []string{"10.0.0.7, 10.0.0.8"}, "10.0.0.7"},
		{"garbage from a trusted hop: the hop that passed it", proxies, "10.1.2.3:4000", []string{"1.1.1.1, nonsense, 10.0.0.8"}, "10.0.0.8"},
		{"garbage at the right: the peer", proxies, "10.1.2.3:4000", []string{"nonsense"}, "10.1.2.3"},
		{"entries with ports", proxies, "10.1.2.3:4000", []string{"[2001:db8:1::5]:443, 198.51.100.2:8080"}, "198.51.100.2"},
		{"IPv6 peer and client", proxies, "[2001:db8:a::1]:4000", []string{"2001:db8:1::5"}, "2001:db8:1::5"},
		{"IPv4-mapped peer counts as IPv4", proxies, "[::ffff:10.1.2.3]:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"bracketed IPv6 entry", proxies, "10.1.2.3:4000", []string{"[2001:db8:1::5]"}, "2001:db8:1::5"},
		{"remote addr without port", New(nil), "pipe", nil, ""},
		{"remote addr that is a name", New(nil), "localhost:80", nil, "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.rs.ClientIP(r); got != tc.want {
				t.Errorf("ClientIP(remote %s, XFF %q) = %q, want %q", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{" 10.0.0.0/8", "192.0.2.7", "fd00::/8", "", "::ffff:172.16.0.0/108", "10.1.2.3/8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "172.16.0.0/12", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d: %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0", "::ffff:1.2.3.4/8"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("ParsePrefixes(%q): no error", bad)
		}
	}
}

func TestLimitKey(t *testing.T) {
	for ip, want := range map[string]string{
		"203.0.113.7":                 "203.0.113.7",
		"::ffff:203.0.113.7":          "203.0.113.7",
		"2001:db8:1:2:3:4:5:6":        "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":        "2001:db8:1:2::/64", // same /64: same key
		"2001:db8:1:3::1":             "2001:db8:1:3::/64",
		"fe80::1%eth0":                "fe80::/64",
		"":                            "",
		"pipe":                        "",
		"2001:db8::1:2:3:4:5:6:7:8:9": "",
	} {
		if got := LimitKey(ip); got != want {
			t.Errorf("LimitKey(%q) = %q, want %q", ip, got, want)
		}
	}
}
