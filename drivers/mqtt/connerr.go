package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// connectHint says what to check after a failed connection attempt; "" when
// there is nothing specific to say. It never repeats a secret: it looks at
// the error only.
func connectHint(err error, secure bool) string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	msg := err.Error()
	switch {
	case errors.Is(err, packets.ErrorRefusedNotAuthorised), errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return "the broker refused the credentials: check username and password_file (and the broker's password file and ACL)"
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return "the broker refused the client ID: check client_id (and the broker's client ID rules)"
	case errors.As(err, &unknownCA):
		return "the broker's certificate is not signed by a trusted CA: check tls.ca_file"
	case errors.As(err, &hostErr):
		return "the broker's certificate does not name the host in brokers: check the URL or tls.server_name"
	case errors.As(err, &certErr):
		return "the broker's certificate is invalid (expired or not yet valid? check the clock): " + certErr.Error()
	case errors.As(err, &recErr):
		return "the broker did not answer with TLS: use tcp:// for a plaintext listener, or check the port"
	case errors.As(err, &alert), strings.Contains(msg, "tls: certificate required"), strings.Contains(msg, "tls: bad certificate"),
		strings.Contains(msg, "tls: unknown certificate authority"):
		return "the broker refused the TLS handshake: it may require a client certificate (tls.cert_file, tls.key_file) signed by a CA it trusts"
	case secure && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(msg, "connection reset")):
		return "the broker closed the TLS connection: it may require a client certificate (tls.cert_file, tls.key_file) signed by a CA it trusts"
	case !secure && (errors.Is(err, io.EOF) || strings.Contains(msg, "connection reset")):
		return "the broker closed the connection: it may want TLS (an ssl:// broker URL) or refuse this client"
	case strings.Contains(msg, "connection refused"):
		return "nothing listens there: check the broker URL and that the broker runs"
	}
	return ""
}
