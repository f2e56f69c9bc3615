package modelrunner

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/crunchnode/crunch-node/internal/grpcwire"
)

// Secure mode response metadata: the model's proof that its TLS key belongs
// to the cruncher's wallet.
const (
	SecureHeaderMessage   = "x-server-auth-message"
	SecureHeaderSignature = "x-server-auth-signature"
	SecureHeaderWallet    = "x-server-wallet-pubkey"
)

// Files of SECURE_CERT_DIR, as the crunch-certificate tool writes them.
const (
	SecureCAFile   = "ca.crt"
	SecureCertFile = "tls.crt"
	SecureKeyFile  = "tls.key"
)

// SecureServerName is the TLS server name (and authority) a model node's
// certificate is issued for.
func SecureServerName(modelID string) string {
	return "model-node-" + modelID + ".crunchdao.internal"
}

// SecureOptions configures the mTLS wallet mode.
type SecureOptions struct {
	// CertDir holds ca.crt, tls.crt and tls.key. This is SECURE_CERT_DIR,
	// passed in rather than read from the environment so tests stay apart.
	CertDir string
}

// Secure is the "secure model protocol": mutual TLS against a private CA,
// plus, on every response, the model's proof of ownership: a message naming
// the server's TLS key, the model and the cruncher's hotkey, signed by the
// cruncher's Solana (Ed25519) wallet. The CA alone only says the server is
// some model node; the signature says it is this cruncher's model, so a
// model cannot impersonate another cruncher's.
type Secure struct {
	cert    tls.Certificate
	rootCAs *x509.CertPool
}

// NewSecure loads CertDir's CA and client key pair. A missing or unreadable
// file is an error naming it.
func NewSecure(opts SecureOptions) (*Secure, error) {
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(opts.CertDir, name))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return data, nil
	}
	caPEM, err := read(SecureCAFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := read(SecureCertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(SecureKeyFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("parsing %s: no PEM certificate found", SecureCAFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing %s and %s: %w", SecureCertFile, SecureKeyFile, err)
	}
	return &Secure{cert: cert, rootCAs: roots}, nil
}

// Transport implements Security. The TLS config verifies the server's
// chain against ca.crt for the model's own server name; the ownership proof
// is checked on every answer but the health checks', which carry no model
// data.
func (s *Secure) Transport(model ModelInfo) (Transport, error) {
	name := SecureServerName(model.ID)
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{s.cert},
		MinVersion:   tls.VersionTLS12,
		RootCAs:      s.rootCAs,
		ServerName:   name,
	}
	v := &ownershipVerifier{hotkey: model.CruncherHotkey, modelID: model.ID, wallet: model.CruncherWalletPubkey}
	return Transport{TLS: tlsCfg, Authority: name, Verify: v.check}, nil
}

// ServerAuthError is a model that failed to prove it belongs to its
// cruncher. The client treats it as a failed connection and stops using
// the model: the proof is static, so retrying cannot help.
type ServerAuthError struct {
	Reason string
}

func (e *ServerAuthError) Error() string {
	return "model failed to prove its ownership: " + e.Reason
}

// ownershipProof is what one response presented; equal proofs need no new
// signature check.
type ownershipProof struct {
	certPub   string // DER SPKI of the TLS certificate the server presented
	message   string
	signature string
	wallet    string
}

// ownershipVerifier checks the proof of one model. It remembers the last
// proof that passed, so the Ed25519 check runs once per server key and
// message rather than on every call.
type ownershipVerifier struct {
	hotkey  string
	modelID string
	wallet  string

	mu       sync.Mutex
	verified ownershipProof
}

// ServerOwnershipMessage is the JSON the wallet signs.
type ServerOwnershipMessage struct {
	// CertPub is the base64 DER SubjectPublicKeyInfo of the server's TLS
	// key.
	CertPub string `json:"cert_pub"`
	// ExpiresAt is not enforced, as in the Python client.
	ExpiresAt any    `json:"expires_at"`
	Hotkey    string `json:"hotkey"`
	ModelID   string `json:"model_id"`
}

func (v *ownershipVerifier) check(answer *grpcwire.Answer) error {
	proof, err := proofOf(answer)
	if err != nil {
		return err
	}
	v.mu.Lock()
	known := proof == v.verified
	v.mu.Unlock()
	if known {
		return nil
	}
	if err := v.verify(proof); err != nil {
		return err
	}
	v.mu.Lock()
	v.verified = proof
	v.mu.Unlock()
	return nil
}

func proofOf(answer *grpcwire.Answer) (ownershipProof, error) {
	if answer.TLS == nil || len(answer.TLS.PeerCertificates) == 0 {
		return ownershipProof{}, &ServerAuthError{Reason: "no TLS certificate from the server"}
	}
	get := func(key string) (string, error) {
		value, ok := answer.HeaderValue(key)
		if !ok || value == "" {
			return "", &ServerAuthError{Reason: "missing response header " + key}
		}
		return value, nil
	}
	var proof ownershipProof
	var err error
	if proof.message, err = get(SecureHeaderMessage); err != nil {
		return proof, err
	}
	if proof.signature, err = get(SecureHeaderSignature); err != nil {
		return proof, err
	}
	if proof.wallet, err = get(SecureHeaderWallet); err != nil {
		return proof, err
	}
	proof.certPub = string(answer.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo)
	return proof, nil
}

// verify checks, in order: the wallet is the cruncher's, the signature over
// the decoded message bytes is the wallet's, and the message names the
// server's actual TLS key, this model and the cruncher's hotkey.
func (v *ownershipVerifier) verify(proof ownershipProof) error {
	fail := func(format string, args ...any) error {
		return &ServerAuthError{Reason: fmt.Sprintf(format, args...)}
	}
	if v.wallet == "" {
		return fail("the model info has no cruncher_wallet_pubkey to check against")
	}
	if proof.wallet != v.wallet {
		return fail("wallet %s is not the cruncher's wallet %s", proof.wallet, v.wallet)
	}
	pub, err := DecodeBase58(proof.wallet)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fail("wallet %s is not a base58 Ed25519 public key", proof.wallet)
	}
	msg, err := base64.StdEncoding.DecodeString(proof.message)
	if err != nil {
		return fail("%s is not base64: %v", SecureHeaderMessage, err)
	}
	sig, err := base64.StdEncoding.DecodeString(proof.signature)
	if err != nil {
		return fail("%s is not base64: %v", SecureHeaderSignature, err)
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
		return fail("the wallet signature does not verify")
	}
	var m ServerOwnershipMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return fail("%s is not JSON: %v", SecureHeaderMessage, err)
	}
	certPub, err := base64.StdEncoding.DecodeString(m.CertPub)
	if err != nil || string(certPub) != proof.certPub {
		return fail("cert_pub is not the key of the TLS certificate the server presented")
	}
	if m.ModelID != v.modelID {
		return fail("model_id %q is not %q", m.ModelID, v.modelID)
	}
	if m.Hotkey != v.hotkey {
		return fail("hotkey %q is not the cruncher's hotkey %q", m.Hotkey, v.hotkey)
	}
	return nil
}

// base58Alphabet is Bitcoin's, which Solana uses for its keys.
const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// DecodeBase58 decodes a Bitcoin-alphabet base58 string; each leading '1'
// is a leading zero byte. Keys are short, so the quadratic big-number
// arithmetic costs nothing worth a dependency.
func DecodeBase58(s string) ([]byte, error) {
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// Little-endian base-256 digits of the value after the leading ones.
	var num []byte
	for i := zeros; i < len(s); i++ {
		d := strings.IndexByte(base58Alphabet, s[i])
		if d < 0 {
			return nil, fmt.Errorf("invalid base58 character %q at %d", s[i], i)
		}
		carry := d
		for j := range num {
			carry += int(num[j]) * 58
			num[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			num = append(num, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros+len(num))
	for i, b := range num {
		out[len(out)-1-i] = b
	}
	return out, nil
}

// EncodeBase58 is DecodeBase58's inverse, for tests and tools that need to
// write a wallet key.
func EncodeBase58(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// Little-endian base-58 digits.
	var digits []byte
	for _, x := range b[zeros:] {
		carry := int(x)
		for j := range digits {
			carry += int(digits[j]) << 8
			digits[j] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	var sb strings.Builder
	sb.Grow(zeros + len(digits))
	for range zeros {
		sb.WriteByte('1')
	}
	for i := len(digits) - 1; i >= 0; i-- {
		sb.WriteByte(base58Alphabet[digits[i]])
	}
	return sb.String()
}

// isServerAuthError reports whether err is a failed ownership proof.
func isServerAuthError(err error) bool {
	var ae *ServerAuthError
	return errors.As(err, &ae)
}
