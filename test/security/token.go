package security

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// HS256Token returns a JWT for subject (the Pulsar role) signed with secret,
// as Pulsar's AuthenticationProviderToken checks it with tokenSecretKey. No
// expiry unless exp (Unix seconds) is non-zero. The standard library is
// enough for HS256.
func HS256Token(secret []byte, subject string, exp int64) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := map[string]any{"sub": subject}
	if exp != 0 {
		claims["exp"] = exp
	}
	body, _ := json.Marshal(claims)
	signing := header + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
