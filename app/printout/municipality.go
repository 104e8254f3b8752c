package printout

// The issuing municipality as the printed documents name it when the terminal was given no
// name (--municipality): document text, like the rest of this package's Japanese.

// MunicipalityByCode names the municipality by its local public body code (地方公共団体コード,
// JIS X 0402), the code the terminal's certificate from enrolment carries.
func MunicipalityByCode(code string) string { return "地方公共団体コード " + code }

// MunicipalityUnset is printed when the terminal knows neither name nor code.
const MunicipalityUnset = "（市区町村未設定）"
