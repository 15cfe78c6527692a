// Package zmssvctoken is a stand-in for the Athenz package of the same path,
// used only by the firmware build (packaging/firmware.sh). pulsar-client-go's
// pulsar/auth imports the real package for its Athenz authentication, which
// the gateway never offers; the real package pulls in the Athenz ZTS and ZMS
// clients and, through them, k8s.io/apimachinery and more, megabytes of
// code in every binary. This stub keeps the identifiers pulsar-client-go
// uses with the same types, and every constructor fails with ErrNotIncluded.
package zmssvctoken

import (
	"errors"
	"time"
)

// ErrNotIncluded is what every function of the stub returns.
var ErrNotIncluded = errors.New("athenz authentication is not included in edgegw firmware builds")

// Token is a mechanism to get an ntoken as a string.
type Token interface {
	// Value returns the value of the current token or an error.
	Value() (string, error)
}

// TokenBuilder sets optional ntoken attributes and gives the Token.
type TokenBuilder interface {
	SetExpiration(t time.Duration)
	SetHostname(h string)
	SetIPAddress(ip string)
	SetKeyService(keyService string)
	Token() Token
}

// NewTokenBuilder always fails with ErrNotIncluded.
func NewTokenBuilder(domain, name string, privateKeyPEM []byte, keyVersion string) (TokenBuilder, error) {
	return nil, ErrNotIncluded
}
