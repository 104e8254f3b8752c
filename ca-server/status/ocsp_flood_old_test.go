package status

import (
	"bytes"
	"io"
	"testing"

	"madoguchi/ca-server/ocsp"
)

func bytesReader(b []byte) io.Reader                       { return bytes.NewReader(b) }
func ocspConfig(c ocsp.Config) ocsp.Config                 { return c }
func checkOCSPCache(t *testing.T, r *ocsp.Responder)       {}
