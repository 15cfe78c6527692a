package mqttbroker

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// HashIterations is the PBKDF2 work factor HashPassword uses: about 0.1s on
// a Raspberry Pi 4, paid once per connection.
const HashIterations = 100_000

type pbkdf2Hash struct {
	iter      int
	salt, key []byte
}

var b64 = base64.RawStdEncoding

// HashPassword returns a password_hash value for password:
// "pbkdf2-sha256$<iterations>$<salt, base64>$<key, base64>".
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, HashIterations, 32)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", HashIterations, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func parseHash(s string) (*pbkdf2Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return nil, errors.New(`want "pbkdf2-sha256$<iterations>$<salt>$<key>" (see HashPassword)`)
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1000 || iter > 10_000_000 {
		return nil, fmt.Errorf("iterations %q outside [1000, 10000000]", parts[1])
	}
	salt, err1 := b64.DecodeString(parts[2])
	key, err2 := b64.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return nil, errors.New("salt or key is not base64 (unpadded) of at least 8 and 16 bytes")
	}
	return &pbkdf2Hash{iter: iter, salt: salt, key: key}, nil
}

// secret checks one user's password.
type secret struct {
	plainSum [32]byte // sha256 of the password, for password_file users
	hash     *pbkdf2Hash
}

func (s *secret) ok(password []byte) bool {
	if s.hash != nil {
		k, err := pbkdf2.Key(sha256.New, string(password), s.hash.salt, s.hash.iter, len(s.hash.key))
		return err == nil && subtle.ConstantTimeCompare(k, s.hash.key) == 1
	}
	sum := sha256.Sum256(password)
	return subtle.ConstantTimeCompare(sum[:], s.plainSum[:]) == 1
}

type account struct {
	secret secret
	acl    ACL
}

// authHook authenticates CONNECTs and checks every publish, subscribe and
// delivery against the user's ACL.
type authHook struct {
	mochi.HookBase
	log            *slog.Logger
	users          map[string]*account
	allowAnonymous bool
	anonymous      ACL
	// clients are the server's sessions, set by Start: a client ID whose
	// session belongs to one user cannot be taken over by another.
	clients atomic.Pointer[mochi.Clients]
}

func (h *authHook) ID() string { return "edgegw-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	ok := false
	switch {
	case user == "":
		ok = h.allowAnonymous && len(pk.Connect.Password) == 0
	default:
		if a := h.users[user]; a != nil {
			ok = a.secret.ok(pk.Connect.Password)
		}
	}
	if !ok {
		h.log.Warn("connection refused: bad credentials", "username", user, "client_id", cl.ID, "remote", cl.Net.Remote, "listener", cl.Net.Listener)
		return false
	}
	if cs := h.clients.Load(); cs != nil {
		if old, exists := cs.Get(cl.ID); exists && string(old.Properties.Username) != user {
			h.log.Warn("connection refused: the client ID's session belongs to another user", "username", user,
				"client_id", cl.ID, "owner", string(old.Properties.Username), "remote", cl.Net.Remote)
			return false
		}
	}
	return true
}

func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	var acl ACL
	switch {
	case user == "":
		acl = h.anonymous
	default:
		a := h.users[user]
		if a == nil {
			return false
		}
		acl = a.acl
	}
	filters := acl.Subscribe
	if write {
		filters = acl.Publish
	}
	for _, f := range filters {
		if strings.Contains(f, "%") {
			var ok bool
			if f, ok = expand(f, user, cl.ID); !ok {
				continue
			}
		}
		if covers(f, topic) {
			return true
		}
	}
	if write {
		h.log.Warn("publish refused by ACL", "username", user, "client_id", cl.ID, "topic", topic)
	}
	return false
}

// expand replaces %u in an ACL filter with the username and %c with the
// client ID. A value that is empty or holds '/', '+', '#' or NUL would
// change the filter's shape, so the filter then applies to nothing.
func expand(filter, user, clientID string) (string, bool) {
	for _, v := range []struct{ token, val string }{{"%u", user}, {"%c", clientID}} {
		if !strings.Contains(filter, v.token) {
			continue
		}
		if v.val == "" || strings.ContainsAny(v.val, "/+#\x00") {
			return "", false
		}
		filter = strings.ReplaceAll(filter, v.token, v.val)
	}
	return filter, true
}

// covers reports whether filter allows req, a topic or a filter: every
// topic req can match, filter matches too.
func covers(filter, req string) bool {
	if strings.HasPrefix(req, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fl, rl := strings.Split(filter, "/"), strings.Split(req, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(rl) {
			return false
		}
		switch {
		case f == "+":
			if rl[i] == "#" {
				return false
			}
		case f != rl[i]:
			return false
		}
	}
	return len(fl) == len(rl)
}

func trimSecret(b []byte) []byte { return bytes.TrimRight(b, "\r\n") }
