// Package ztsroletoken is a stand-in for the Athenz package of the same path,
// used only by the firmware build (packaging/firmware.sh), so that
// pulsar-client-go's Athenz authentication, which the gateway never offers,
// does not bring the Athenz ZTS client and k8s.io/apimachinery into the
// binaries. The types match the real package; every RoleToken method fails
// with zmssvctoken.ErrNotIncluded.
package ztsroletoken

import (
	"time"

	"github.com/AthenZ/athenz/libs/go/zmssvctoken"
)

// RoleToken is a mechanism to get a role token (ztoken) as a string.
type RoleToken interface {
	RoleTokenValue() (string, error)
	StartPrefetcher() error
	StopPrefetcher() error
}

// RoleTokenOptions has the fields of the real package's options; the stub
// ignores them.
type RoleTokenOptions struct {
	BaseZTSURL       string        // the base ZTS URL to use
	ProxyURL         string        // the proxy URL for accessing ZTS
	Role             string        // the single role for which a token is required
	MinExpire        time.Duration // the minimum expiry of the token
	MaxExpire        time.Duration // the maximum expiry of the token
	AuthHeader       string        // Auth Header to use while making ZMS calls
	CACert           []byte        // Optional CA cert PEM to validate the ZTS server
	PrefetchInterval time.Duration // the interval at which the role token cache is refreshed
}

// roleToken is the RoleToken of the stub: every method fails.
type roleToken struct{}

// NewRoleToken returns a RoleToken whose methods fail with
// zmssvctoken.ErrNotIncluded.
func NewRoleToken(tok zmssvctoken.Token, domain string, opts RoleTokenOptions) *roleToken {
	return &roleToken{}
}

// NewRoleTokenFromCert returns a RoleToken whose methods fail with
// zmssvctoken.ErrNotIncluded.
func NewRoleTokenFromCert(certFile, keyFile, domain string, opts RoleTokenOptions) *roleToken {
	return &roleToken{}
}

// RoleTokenValue fails with zmssvctoken.ErrNotIncluded.
func (*roleToken) RoleTokenValue() (string, error) { return "", zmssvctoken.ErrNotIncluded }

// StartPrefetcher fails with zmssvctoken.ErrNotIncluded.
func (*roleToken) StartPrefetcher() error { return zmssvctoken.ErrNotIncluded }

// StopPrefetcher fails with zmssvctoken.ErrNotIncluded.
func (*roleToken) StopPrefetcher() error { return zmssvctoken.ErrNotIncluded }
