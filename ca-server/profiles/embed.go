// Package profiles holds the default certificate profiles as JSON data,
// embedded in the binary; ca-server/profile parses them. A deployment can
// replace any of them with a file of the same name in its profiles directory.
package profiles

import "embed"

// FS holds signature.json and user-authentication.json.
//
//go:embed *.json
var FS embed.FS
