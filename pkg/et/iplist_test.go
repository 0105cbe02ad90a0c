package et_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/et"
)

func TestParseIPList(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		"# Emerging Threats - fwrules",          // 1 comment
		"",                                      // 2 blank
		"1.2.3.4",                               // 3
		"10.0.0.0/8  # spamhaus drop",           // 4
		"1.2.3.4",                               // 5 duplicate
		"  5.6.7.8\r",                           // 6 CRLF, leading space
		"alert ip any any -> any any (sid:1;)",  // 7 a rule: bad
		"1.2.3.0/16",                            // 8 host bits: bad
		"2001:db8::1",                           // 9
		"2001:db8::/32",                         // 10
		"300.1.1.1",                             // 11 bad
		"::ffff:9.9.9.9",                        // 12 mapped: IPv4
		"fe80::1%eth0",                          // 13 zone: bad
		"#1.1.1.1",                              // 14 commented out
		"1.1.1.1#x",                             // 15 '#' not after a blank: bad
		"\xff\xfe",                              // 16 not UTF-8: bad
		strings.Repeat("9", et.MaxIPListLine+5), // 17 too long: bad
		"8.8.8.8",                               // 18 no final newline
	}, "\n")
	l, err := et.ParseIPList(strings.NewReader(in), "fwrules/emerging-Block-IPs.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []et.IPEntry{
		{Value: "1.2.3.4", Type: et.TypeIPAddress, Line: 3},
		{Value: "10.0.0.0/8", Type: et.TypeCIDRBlock, Line: 4},
		{Value: "5.6.7.8", Type: et.TypeIPAddress, Line: 6},
		{Value: "2001:db8::1", Type: et.TypeIPv6Address, Line: 9},
		{Value: "2001:db8::/32", Type: et.TypeCIDRBlock, Line: 10},
		{Value: "9.9.9.9", Type: et.TypeIPAddress, Line: 12},
		{Value: "8.8.8.8", Type: et.TypeIPAddress, Line: 18},
	}
	if len(l.Entries) != len(want) {
		t.Fatalf("entries %+v, want %+v", l.Entries, want)
	}
	for i := range want {
		if l.Entries[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, l.Entries[i], want[i])
		}
	}
	var badLines []int
	for _, b := range l.Bad {
		badLines = append(badLines, b.Line)
		if !errors.Is(b, et.ErrBadLine) || b.File != "fwrules/emerging-Block-IPs.txt" || len(b.Text) > 90 {
			t.Errorf("bad line %+v", b)
		}
		if !strings.HasPrefix(b.Error(), "fwrules/emerging-Block-IPs.txt:") {
			t.Errorf("bad line error %q does not start with file:line", b.Error())
		}
	}
	if got, wantBad := badLines, []int{7, 8, 11, 13, 15, 16, 17}; !slices.Equal(got, wantBad) {
		t.Errorf("bad lines %v, want %v", got, wantBad)
	}
	if l.BadCount != 7 || l.Lines != 18 || l.Comments != 2 || l.Blank != 1 || l.Duplicates != 1 {
		t.Errorf("counts %+v", l)
	}
}

func TestParseIPListEmpty(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "\n", "# only a comment\n"} {
		l, err := et.ParseIPList(strings.NewReader(in), "x.txt")
		if err != nil || len(l.Entries) != 0 || l.BadCount != 0 {
			t.Errorf("ParseIPList(%q) = %+v, %v", in, l, err)
		}
	}
}

func FuzzParseIPList(f *testing.F) {
	f.Add("1.2.3.4\n10.0.0.0/8 # x\n#c\n\nbad\n")
	f.Add("2001:db8::/32\r\n::1\n")
	f.Fuzz(func(t *testing.T, in string) {
		l, err := et.ParseIPList(strings.NewReader(in), "f.txt")
		if err != nil {
			t.Fatal(err)
		}
		if l.Lines < len(l.Entries)+l.BadCount+l.Comments+l.Blank+l.Duplicates {
			t.Errorf("counts exceed lines: %+v", l)
		}
	})
}
