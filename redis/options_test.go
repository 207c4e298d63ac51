package redis

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseURLReadsEachForm(t *testing.T) {
	tests := []struct {
		url  string
		want Options
	}{
		{"redis://127.0.0.1:6379", Options{Addrs: []string{"127.0.0.1:6379"}}},
		{"redis://localhost", Options{Addrs: []string{"localhost:6379"}}},
		{"REDIS://cache.internal:7000/", Options{Addrs: []string{"cache.internal:7000"}}},
		{"redis://h:1/3", Options{Addrs: []string{"h:1"}, DB: 3}},
		{"redis://:secret@h", Options{Addrs: []string{"h:6379"}, Password: "secret"}},
		{"redis://app:s3cr%3Ft@h/2", Options{Addrs: []string{"h:6379"}, Username: "app", Password: "s3cr?t", DB: 2}},
		{"redis://app:pa/ss@wo:rd@h", Options{Addrs: []string{"h:6379"}, Username: "app", Password: "pa/ss@wo:rd"}},
		{"redis://app@h", Options{Addrs: []string{"h:6379"}, Username: "app"}},
		{"redis://[::1]:6380", Options{Addrs: []string{"[::1]:6380"}}},
		{"redis://[::1]", Options{Addrs: []string{"[::1]:6379"}}},
		{"redis://h?dial_timeout=250ms&io_timeout=2s&client_name=sessiond-1", Options{
			Addrs: []string{"h:6379"}, DialTimeout: 250 * time.Millisecond, IOTimeout: 2 * time.Second, ClientName: "sessiond-1"}},
		{"rediss://h:6380", Options{Addrs: []string{"h:6380"}, TLS: true}},
		{"rediss://h?tls_ca=/etc/ca.pem&tls_cert=/c.pem&tls_key=/k.pem&tls_server_name=redis.example", Options{
			Addrs: []string{"h:6379"}, TLS: true, TLSCAFile: "/etc/ca.pem", TLSCertFile: "/c.pem", TLSKeyFile: "/k.pem", TLSServerName: "redis.example"}},
		{"rediss://h?tls_insecure_skip_verify=true", Options{Addrs: []string{"h:6379"}, TLS: true, TLSInsecureSkipVerify: true}},
		{"redis+sentinel://s1,s2:26380,s3/1?master=mymaster", Options{
			Topology: Sentinel, Addrs: []string{"s1:26379", "s2:26380", "s3:26379"}, DB: 1, MasterName: "mymaster"}},
		{"redis+sentinel://:mpw@s1?master=m&sentinel_password=spw&sentinel_username=sentuser", Options{
			Topology: Sentinel, Addrs: []string{"s1:26379"}, Password: "mpw", MasterName: "m", SentinelUsername: "sentuser", SentinelPassword: "spw"}},
		{"rediss+sentinel://s1?master=m", Options{Topology: Sentinel, Addrs: []string{"s1:26379"}, MasterName: "m", TLS: true}},
		{"redis+cluster://n1:7000,n2:7001,n3:7002", Options{Topology: Cluster, Addrs: []string{"n1:7000", "n2:7001", "n3:7002"}}},
		{"redis+cluster://n1/0", Options{Topology: Cluster, Addrs: []string{"n1:6379"}}},
		{"rediss+cluster://u:p@n1:7000?tls_ca=/ca.pem", Options{
			Topology: Cluster, Addrs: []string{"n1:7000"}, Username: "u", Password: "p", TLS: true, TLSCAFile: "/ca.pem"}},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.url, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseURL(%q)\n got %+v\nwant %+v", tt.url, got, tt.want)
		}
	}
}

func TestParseURLRefusesWhatItCannotMean(t *testing.T) {
	tests := []struct {
		url, want string // want: a part of the error's text
	}{
		{"", "no scheme"},
		{"127.0.0.1:6379", "no scheme"},
		{"http://h", `unknown scheme "http"`},
		{"redis+ring://h", `unknown scheme "redis+ring"`},
		{"unix:///tmp/redis.sock", `unknown scheme "unix"`},
		{"redis://", "no host"},
		{"redis://:pw@/0", "no host"},
		{"redis://h:0", "port is not a number from 1 to 65535"},
		{"redis://h:65536", "port is not a number from 1 to 65535"},
		{"redis://h:+1", "port is not a number"},
		{"redis://h:", "empty port"},
		{"redis://::1", "no host name before the port"},
		{"redis://[::1", "no ] closes"},
		{"redis://[127.0.0.1]", "is not an IPv6 address"},
		{"redis://h%41", "is not allowed in a host name"},
		{"redis://a,b", "2 hosts for a standalone server"},
		{"redis://h,", "an empty host"},
		{"redis://h/x", `database "x" is not a number`},
		{"redis://h/-1", `database "-1" is not a number`},
		{"redis://h/1/2", `database "1/2" is not a number`},
		{"redis://h/99999999999", "out of range"},
		{"redis://h#frag", "fragment"},
		{"redis://h?dial_timeout=5", "want a duration with its unit"},
		{"redis://h?dial_timeout=0s", "want more than 0"},
		{"redis://h?io_timeout=-1s", "want more than 0"},
		{"redis://h?io_timeout=2h", "at most 1h0m0s"},
		{"redis://h?dial_timout=1s", `unknown query parameter "dial_timout"`},
		{"redis://h?client_name=a&client_name=b", "given 2 times"},
		{"redis://h?client_name=two%20words", "no spaces"},
		{"redis://h?a=%zz", "query"},
		{"redis://h?master=m", "for sentinel URLs only"},
		{"redis+cluster://h?sentinel_password=x", "for sentinel URLs only"},
		{"redis://h?tls_ca=/ca.pem", "without TLS"},
		{"redis://h?tls_insecure_skip_verify=true", "without TLS"},
		{"rediss://h?tls_insecure_skip_verify=yes", "want true or false"},
		{"rediss://h?tls_cert=/c.pem", "both tls_cert and tls_key"},
		{"redis+sentinel://s1", "no master name"},
		{"redis+sentinel://s1?master=", "no master name"},
		{"redis+sentinel://s1/x?master=m", "is not a number"},
		{"redis+cluster://n1,n2/1", "database 1 on a cluster"},
		{"redis://u:p%zz@h", "password is not properly percent-encoded"},
		{"redis://u%zz:p@h", "user name is not properly percent-encoded"},
		{"redis://h?x=a@b", "an @ after the ?"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.url)
		if err == nil {
			t.Errorf("ParseURL(%q) accepted it; want an error with %q", tt.url, tt.want)
			continue
		}
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("ParseURL(%q): %v does not match ErrInvalidURL", tt.url, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURL(%q): %q, want it to say %q", tt.url, err, tt.want)
		}
	}
}

func TestParseURLErrorsDoNotQuotePasswords(t *testing.T) {
	for _, u := range []string{
		"redis://user:hunter2@h:bad",
		"redis://user:hunter2@h/x",
		"redis://user:hunter2@h?nope=1",
		"redis://user:hunt?er2@h",                               // an unencoded ? in the password
		"redis://user:hunter2@h#x",                              // a fragment
		"redis+sentinel://:hunter2@s?sentinel_password=hunter2", // no master
		"redis+cluster://:hunter2@n/4",
		"redis://:hunter2%zz@h",
		"ftp://:hunter2@h",
	} {
		_, err := ParseURL(u)
		if err == nil {
			t.Errorf("ParseURL(%q) accepted it", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hunt") {
			t.Errorf("ParseURL(%q): %q quotes the password", u, err)
		}
	}
}

func TestStringLeavesOutPasswordsAndReadsBack(t *testing.T) {
	for _, u := range []string{
		"redis://user:hunter2@h:6380/4?client_name=n&dial_timeout=1.5s",
		"rediss://:hunter2@h?tls_ca=%2Fetc%2Fca%20file.pem&tls_insecure_skip_verify=true",
		"redis+sentinel://a%3Ab:hunter2@s1,[::1]:26380/2?master=m&sentinel_password=hunter2&sentinel_username=su",
		"rediss+cluster://n1:7000,n2:7001?io_timeout=750ms",
	} {
		o, err := ParseURL(u)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", u, err)
		}
		s := o.String()
		if strings.Contains(s, "hunter2") {
			t.Errorf("String() = %q shows a password", s)
		}
		back, err := ParseURL(s)
		if err != nil {
			t.Fatalf("ParseURL(String() = %q): %v", s, err)
		}
		want := o
		want.Password, want.SentinelPassword = "", ""
		if !reflect.DeepEqual(back, want) {
			t.Errorf("ParseURL(%q)\n got %+v\nwant %+v", s, back, want)
		}
	}
}

func TestStringOfEachForm(t *testing.T) {
	tests := []struct{ url, want string }{
		{"redis://h", "redis://h:6379"},
		{"redis://:pw@h/0", "redis://h:6379"},
		{"rediss://u:pw@h:1/2", "rediss://u@h:1/2"},
		{"redis+sentinel://:pw@s?master=m&sentinel_password=x", "redis+sentinel://s:26379?master=m"},
		{"rediss+cluster://a:1,b:2", "rediss+cluster://a:1,b:2"},
	}
	for _, tt := range tests {
		o, err := ParseURL(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.String(); got != tt.want {
			t.Errorf("ParseURL(%q).String() = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestValidateRefusesOptionsMadeByHand(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no address", Options{}, "no address"},
		{"address without port", Options{Addrs: []string{"h"}}, "want host:port"},
		{"negative db", Options{Addrs: []string{"h:1"}, DB: -1}, "out of range"},
		{"unknown topology", Options{Addrs: []string{"h:1"}, Topology: 7}, "unknown topology"},
		{"negative timeout", Options{Addrs: []string{"h:1"}, IOTimeout: -time.Second}, "io_timeout"},
	}
	for _, tt := range tests {
		err := tt.o.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error with %q", tt.name, err, tt.want)
		}
	}
	if err := (Options{Addrs: []string{"h:1"}}).Validate(); err != nil {
		t.Errorf("the smallest options: %v", err)
	}
}

// FuzzParseURL checks that ParseURL never panics, that what it accepts
// passes Validate, and that the String of what it accepts holds no
// password and reads back to the same options, passwords left out.
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"redis://127.0.0.1:6379/0",
		"redis://u:p@h:1/2?dial_timeout=1s&io_timeout=2s&client_name=x",
		"rediss://:p@h?tls_ca=/ca&tls_cert=/c&tls_key=/k&tls_server_name=s&tls_insecure_skip_verify=1",
		"redis+sentinel://:p@s1,s2:2/3?master=m&sentinel_username=su&sentinel_password=sp",
		"rediss+sentinel://[::1]?master=m",
		"redis+cluster://n1:1,n2:2,[::1]:3",
		"redis://a%3Ab:c%40d@h",
		"redis://h?x=%zz",
		"redis://user:pa/ss@h/x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("ParseURL(%q): %v does not match ErrInvalidURL", raw, err)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("ParseURL(%q) accepted options that Validate refuses: %v", raw, err)
		}
		s := o.String()
		noPasswords := o
		noPasswords.Password, noPasswords.SentinelPassword = "", ""
		if s2 := noPasswords.String(); s2 != s {
			t.Fatalf("String() depends on the passwords: %q with them, %q without", s, s2)
		}
		back, err := ParseURL(s)
		if err != nil {
			t.Fatalf("ParseURL(%q) accepted; its String() %q is refused: %v", raw, s, err)
		}
		if !reflect.DeepEqual(back, noPasswords) {
			t.Fatalf("ParseURL(%q).String() = %q reads back as\n%+v\nwant\n%+v", raw, s, back, noPasswords)
		}
		if back.String() != s {
			t.Fatalf("String() is not stable: %q, then %q", s, back.String())
		}
	})
}
