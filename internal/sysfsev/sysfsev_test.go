package sysfsev

import (
	"errors"
	"testing"
)

func TestEncode(t *testing.T) {
	formats := map[string]Field{}
	for name, s := range map[string]string{"event": "config:0-7", "umask": "config:8-15", "thresh": "config1:0-3,32-35"} {
		f, err := ParseFormat(s + "\n")
		if err != nil {
			t.Fatal(err)
		}
		formats[name] = f
	}
	terms, err := ParseEvent("event=0x04,umask=0x03,thresh=0x35\n")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Encode(terms, formats)
	if err != nil {
		t.Fatal(err)
	}
	if cfg[0] != 0x0304 || cfg[1] != 0x5|0x3<<32 {
		t.Fatalf("config %#x", cfg)
	}
	if _, err := Encode([]Term{{"event", 0x100}}, formats); !errors.Is(err, ErrSyntax) {
		t.Fatalf("overflow accepted: %v", err)
	}
	if _, err := Encode([]Term{{"nope", 1}}, formats); !errors.Is(err, ErrSyntax) {
		t.Fatalf("unknown term accepted: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "config", "config3:0-7", "config:8-7", "config:0-64", "config:x"} {
		if _, err := ParseFormat(s); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseFormat(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "=1", "event=zz", "event=0x04,,umask=1"} {
		if _, err := ParseEvent(s); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseEvent(%q) = %v", s, err)
		}
	}
}

func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{"event=0x04,umask=0x03", "event=0x00", "edge,inv=1,cmask=4", "config=0x1234"} {
		f.Add(s, "config:0-7")
	}
	f.Fuzz(func(t *testing.T, ev, format string) {
		terms, err := ParseEvent(ev)
		if err != nil {
			return
		}
		fl, err := ParseFormat(format)
		if err != nil {
			return
		}
		fm := map[string]Field{}
		for _, t := range terms {
			fm[t.Name] = fl
		}
		cfg, err := Encode(terms, fm)
		if err == nil && len(terms) == 1 && fl.Config == 0 && len(fl.Ranges) == 1 && fl.Ranges[0][0] == 0 {
			if cfg[0] != terms[0].Value {
				t.Fatalf("%q in %q: config %#x", ev, format, cfg[0])
			}
		}
	})
}
