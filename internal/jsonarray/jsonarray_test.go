package jsonarray

import (
	"encoding/json"
	"testing"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, "[]"},
		{[]int{}, "[]"},
		{[]int{1, 2}, "[1,2]"},
	} {
		b, err := json.Marshal(Of(tc.in))
		if err != nil || string(b) != tc.want {
			t.Errorf("Of(%#v) encodes as %s (%v), want %s", tc.in, b, err, tc.want)
		}
	}
}
