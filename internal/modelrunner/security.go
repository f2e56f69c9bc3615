package modelrunner

import (
	"context"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Security decides how connections to one model are secured and
// authenticated. It is the seam for the three modes of the protocol:
// Insecure (default), Gateway and Secure (the mTLS wallet mode), which needs
// the model's ModelInfo (wallet key, hotkey) and so gets it here.
type Security interface {
	DialOptions(model ModelInfo) ([]grpc.DialOption, error)
}

// Insecure is plaintext HTTP/2 with no authentication, what local
// development and most orchestrator deployments use.
type Insecure struct{}

// DialOptions implements Security.
func (Insecure) DialOptions(ModelInfo) ([]grpc.DialOption, error) {
	return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
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

// DialOptions implements Security.
func (g *Gateway) DialOptions(model ModelInfo) ([]grpc.DialOption, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: g.rootCAs}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithPerRPCCredentials(gatewayCreds{gateway: g, modelID: model.ID}),
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

type gatewayCreds struct {
	gateway *Gateway
	modelID string
}

func (c gatewayCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return c.gateway.Sign(c.modelID)
}

// RequireTransportSecurity keeps the signed headers off plaintext links.
func (gatewayCreds) RequireTransportSecurity() bool { return true }
