package sanitize

import "testing"

func TestLine(t *testing.T) {
	for in, want := range map[string]string{
		"bash":                       "bash",
		"naïve café":                 "naïve café",
		"\x1b[2J\x1b]52;c;aGk=\x07x": "?[2J?]52;c;aGk=?x",
		"a\rb\nc\td":                 "a?b?c?d",
		"\u009b31m":                  "?31m",
		"\xff\xfeok":                 "??ok",
		"abc\u202edcba":              "abc?dcba",
		"\x7f":                       "?",
		"":                           "",
	} {
		if got := Line(in); got != want {
			t.Errorf("Line(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Lines("a\x1b\nb"); len(got) != 2 || got[0] != "a?" || got[1] != "b" {
		t.Errorf("Lines: %q", got)
	}
}

func FuzzLine(f *testing.F) {
	f.Add("\x1b[31mred\u009b")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range Line(s) {
			if Unsafe(r) && r != Replacement {
				t.Fatalf("Line(%q) kept %U", s, r)
			}
		}
	})
}
