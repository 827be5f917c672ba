package pmu

import (
	"errors"
	"slices"
	"testing"
)

// Group slots follow first appearance; a standalone event is its own
// group; presets not counted and groups past max get -1.
func TestGroupSlots(t *testing.T) {
	r := &Reader{
		ids:  make([]PresetID, 6),
		errs: []error{nil, nil, nil, errors.New("not counted"), nil, nil},
		groups: []group{
			{members: []int{4, 0}, fds: []int{10, 11}},
			{members: []int{1}, fds: []int{12}, single: true},
			{members: []int{2}, fds: []int{13}, single: true},
			{members: []int{5}, fds: []int{14}},
		},
	}
	if got, want := r.GroupSlots(8), []int{0, 1, 2, -1, 0, 3}; !slices.Equal(got, want) {
		t.Errorf("GroupSlots(8) = %v, want %v", got, want)
	}
	if got, want := r.GroupSlots(2), []int{0, 1, -1, -1, 0, -1}; !slices.Equal(got, want) {
		t.Errorf("GroupSlots(2) = %v, want %v", got, want)
	}
}
