package api_test

import (
	"testing"

	"madoguchi/ca-server/store"
)

func flushTraffic(t *testing.T, e *env)     {}
func isSummary(r store.AuditRecord) bool    { return r.Action == "traffic.summary" }
