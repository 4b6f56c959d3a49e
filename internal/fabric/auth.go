package fabric

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// MaxHostIDLen bounds a host id so subjects stay short.
const MaxHostIDLen = 64

// ValidHostID reports whether id can name a host: 1 to MaxHostIDLen
// characters of [a-z0-9-]. Ids are subject tokens, so anything else (dots,
// wildcards, spaces) could widen a host's permissions.
func ValidHostID(id string) bool {
	if id == "" || len(id) > MaxHostIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// secretPrefix marks a PeerLLM host secret so it is recognisable in a
// credentials file and by secret scanners.
const secretPrefix = "plh_"

// NewSecret returns a fresh host secret: 256 random bits, URL-safe.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms; a secret made of
		// zeros would be worse than a crash.
		panic("fabric: crypto/rand: " + err.Error())
	}
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret returns what the orchestrator stores for a secret. The secret
// has 256 bits of entropy, so one SHA-256 is enough: there is nothing to
// brute-force that a slow hash would protect.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(h[:])
}

// CheckSecret reports whether secret matches hash (from HashSecret), in
// constant time.
func CheckSecret(hash, secret string) bool {
	if !strings.HasPrefix(hash, "sha256:") || secret == "" {
		return false
	}
	want := HashSecret(secret)
	return subtle.ConstantTimeCompare([]byte(hash), []byte(want)) == 1
}

// HostPermissions is exactly what host hostID may do on the NATS server:
// subscribe to its own task/cancel/ctl subjects and its own reply inbox;
// publish its own chunks, hello and heartbeats, and reply once to a message
// it received (a ping). Nothing else, in particular nothing of another host.
func HostPermissions(hostID string) *server.Permissions {
	return &server.Permissions{
		Subscribe: &server.SubjectPermission{
			Allow: []string{
				SubjectPrefix + ".host." + hostID + ".>",
				InboxPrefix(hostID) + ".>",
			},
		},
		Publish: &server.SubjectPermission{
			Allow: []string{
				SubjectPrefix + ".out." + hostID + ".>",
				HelloSubject(hostID),
				HeartbeatSubject(hostID),
			},
		},
		Response: &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
	}
}

// HostUser is the NATS user entry for a host, for an external NATS server's
// configuration (server.Options.Users). password may be a bcrypt hash, which
// nats-server accepts in place of the plain secret.
func HostUser(hostID, password string) *server.User {
	return &server.User{Username: hostID, Password: password, Permissions: HostPermissions(hostID)}
}

// ReplyAllowed reports whether the orchestrator may answer a host's request
// on reply. NATS checks the subject a host publishes to, not the reply
// subject it names, so a host could otherwise make the orchestrator's
// privileged connection publish a reply onto another host's task subject.
// Answer only replies under the host's own inbox.
func ReplyAllowed(hostID, reply string) bool {
	p := InboxPrefix(hostID) + "."
	return len(reply) > len(p) && strings.HasPrefix(reply, p) && !strings.ContainsAny(reply, " \t\r\n*>")
}
