package rules_test

import (
	"context"
	"testing"

	"github.com/pipewarden/pipewarden/internal/rules"
)

func TestSmokeLoad(t *testing.T) {
	rs, err := rules.Load(context.Background(), rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rs.Len())
}
