package modelrunner

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/crunchnode/crunch-node/internal/grpcwire"
)

// Security decides how connections to one model are secured and
// authenticated. It is the seam for the three modes of the protocol:
// Insecure (default), Gateway and Secure (the mTLS wallet mode), which needs
// the model's ModelInfo (wallet key, hotkey) and so gets it here.
type Security interface {
	Transport(model ModelInfo) (Transport, error)
}

// Transport is how a client reaches and trusts one model.
type Transport struct {
	// TLS secures the connection; nil is plaintext HTTP/2. ALPN "h2" is
	// added, and an empty ServerName is the model's host.
	TLS *tls.Config

	// Authority is the :authority of every call; empty means the model's
	// host:port.
	Authority string

	// Metadata returns the extra headers of one call (the gateway's
	// signature); nil for none.
	Metadata func() ([]hpack.HeaderField, error)

	// Verify checks each answer but the health checks' (the secure mode's
	// ownership proof); nil for none. An error fails the call.
	Verify func(answer *grpcwire.Answer) error
}

// Insecure is plaintext HTTP/2 with no authentication, what local
// development and most orchestrator deployments use.
type Insecure struct{}

// Transport implements Security.
func (Insecure) Transport(ModelInfo) (Transport, error) {
	return Transport{}, nil
}

// Gateway metadata header names.
const (
	GatewayHeaderMessage   = "x-gateway-auth-message"
	GatewayHeaderPubkey    = "x-gateway-auth-pubkey"
	GatewayHeaderSignature = "x-gateway-auth-signature"
)

// GatewayOptions configures gateway mode.
type GatewayOptions struct {
	// CertDir holds key.pem, the coordinator's RSA private key (PKCS#1 or
	// PKCS#8). This is GATEWAY_CERT_DIR; it is passed in, not read from the
	// environment, so tests and several nodes in one process stay apart.
	CertDir string

	// Now stamps the signed messages; nil means time.Now.
	Now func() time.Time

	// RootCAs verifies the gateway's TLS certificate; nil means the system
	// roots, which is what the real gateways need.
	RootCAs *x509.CertPool
}

// Gateway is the mode for models behind a TLS-terminating gateway (Phala TEE
// VMs): ordinary TLS, plus on every RPC a message {"model_id","timestamp"}
// signed with the coordinator's RSA key. The gateway checks that the key's
// hash is registered on chain for the coordinator's wallet.
type Gateway struct {
	key       *rsa.PrivateKey
	now       func() time.Time
	pubkeyB64 string
	rootCAs   *x509.CertPool
}

// NewGateway loads CertDir/key.pem.
func NewGateway(opts GatewayOptions) (*Gateway, error) {
	path := filepath.Join(opts.CertDir, "key.pem")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading gateway key: %w", err)
	}
	key, err := parseRSAKey(data)
	if err != nil {
		return nil, fmt.Errorf("parsing gateway key %s: %w", path, err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encoding gateway public key: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Gateway{
		key:       key,
		now:       now,
		pubkeyB64: base64.StdEncoding.EncodeToString(der),
		rootCAs:   opts.RootCAs,
	}, nil
}

func parseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("neither PKCS#1 nor PKCS#8: %w", err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want RSA", parsed)
	}
	return key, nil
}

// Transport implements Security: TLS against the system roots (or
// RootCAs), and a fresh signature on every call, health checks included.
func (g *Gateway) Transport(model ModelInfo) (Transport, error) {
	return Transport{
		TLS: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: g.rootCAs},
		Metadata: func() ([]hpack.HeaderField, error) {
			headers, err := g.Sign(model.ID)
			if err != nil {
				return nil, err
			}
			return []hpack.HeaderField{
				{Name: GatewayHeaderMessage, Value: headers[GatewayHeaderMessage], Sensitive: true},
				{Name: GatewayHeaderPubkey, Value: headers[GatewayHeaderPubkey]},
				{Name: GatewayHeaderSignature, Value: headers[GatewayHeaderSignature], Sensitive: true},
			}, nil
		},
	}, nil
}

// Sign returns the three gateway headers for one RPC to modelID.
func (g *Gateway) Sign(modelID string) (map[string]string, error) {
	msg, err := json.Marshal(struct {
		ModelID   string `json:"model_id"`
		Timestamp int64  `json:"timestamp"`
	}{modelID, g.now().Unix()})
	if err != nil {
		return nil, fmt.Errorf("encoding gateway message: %w", err)
	}
	digest := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, g.key, crypto.SHA256, digest[:])
	if err != nil {
		return nil, fmt.Errorf("signing gateway message: %w", err)
	}
	return map[string]string{
		GatewayHeaderMessage:   base64.StdEncoding.EncodeToString(msg),
		GatewayHeaderPubkey:    g.pubkeyB64,
		GatewayHeaderSignature: base64.StdEncoding.EncodeToString(sig),
	}, nil
}
