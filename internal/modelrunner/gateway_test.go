package modelrunner

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
)

// gatewayVerifier checks the signed headers the way the gateway does: the
// key's SHA-256 must be registered, the signature valid and the timestamp
// within 30 s. Health methods skip the check.
type gatewayVerifier struct {
	allowedHash string
	modelID     string
	now         time.Time
	verified    atomic.Int64
}

func (v *gatewayVerifier) verify(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	get := func(k string) ([]byte, error) {
		vals := md.Get(k)
		if len(vals) != 1 {
			return nil, errors.New("missing " + k)
		}
		return base64.StdEncoding.DecodeString(vals[0])
	}
	msg, err := get(GatewayHeaderMessage)
	if err != nil {
		return err
	}
	sig, err := get(GatewayHeaderSignature)
	if err != nil {
		return err
	}
	der, err := get(GatewayHeaderPubkey)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(der)
	if hex.EncodeToString(sum[:]) != v.allowedHash {
		return errors.New("unknown coordinator key")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		return err
	}
	var m struct {
		ModelID   string `json:"model_id"`
		Timestamp int64  `json:"timestamp"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return err
	}
	if m.ModelID != v.modelID {
		return errors.New("wrong model id " + m.ModelID)
	}
	if d := v.now.Unix() - m.Timestamp; d > 30 || d < -30 {
		return errors.New("stale timestamp")
	}
	if string(msg) != `{"model_id":"`+v.modelID+`","timestamp":`+big.NewInt(v.now.Unix()).String()+`}` {
		return errors.New("message is not compact JSON: " + string(msg))
	}
	return nil
}

func (v *gatewayVerifier) interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, "/grpc.health.v1.Health/") {
		if err := v.verify(ctx); err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		v.verified.Add(1)
	}
	return handler(ctx, req)
}

func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotAfter:     time.Now().Add(time.Hour),
		NotBefore:    time.Now().Add(-time.Hour),
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gateway"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestGatewayMode(t *testing.T) {
	t.Parallel()

	// The coordinator's key, as GATEWAY_CERT_DIR/key.pem (PKCS#8).
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600))
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	hash := sha256.Sum256(spki)

	now := time.Unix(1_750_000_000, 0)
	verifier := &gatewayVerifier{allowedHash: hex.EncodeToString(hash[:]), modelID: "g1", now: now}
	cert, pool := selfSignedCert(t)
	h, err := modelhost.New(modelhost.Config{
		Factory: exampleFactory(t, "constant"),
		ServerOptions: []grpc.ServerOption{
			grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})),
			grpc.UnaryInterceptor(verifier.interceptor),
		},
	})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = h.Serve(lis) }()
	defer h.Stop(context.Background())
	info := ModelInfo{ID: "g1", Host: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port, State: StateRunning}

	gw, err := NewGateway(GatewayOptions{CertDir: dir, Now: func() time.Time { return now }, RootCAs: pool})
	require.NoError(t, err)
	opts := testClientOptions(&reports{})
	opts.Security = gw
	c, err := NewClient(info, opts)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Setup(t.Context()))
	res := c.Call(t.Context(), "predict", mustArgs(t, "BTC", 60, 15), nil)
	require.Equal(t, StatusSuccess, res.Status, "%v", res.Err)
	require.Equal(t, map[string]any{"value": 0.5}, res.Value)
	require.Equal(t, int64(2), verifier.verified.Load())

	// A key the gateway does not know is refused.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	otherDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(otherDir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}), 0o600))
	gw2, err := NewGateway(GatewayOptions{CertDir: otherDir, Now: func() time.Time { return now }, RootCAs: pool})
	require.NoError(t, err)
	rep := &reports{}
	opts = testClientOptions(rep)
	opts.Security = gw2
	c2, err := NewClient(info, opts)
	require.NoError(t, err)
	defer c2.Close()
	require.ErrorContains(t, c2.Setup(t.Context()), "unknown coordinator key")

	// Plaintext against a TLS port does not connect.
	opts = testClientOptions(&reports{})
	opts.ConnectTimeout = 300 * time.Millisecond
	c3, err := NewClient(info, opts)
	require.NoError(t, err)
	defer c3.Close()
	require.Error(t, c3.Setup(t.Context()))
}

func TestGatewayKeyErrors(t *testing.T) {
	t.Parallel()

	_, err := NewGateway(GatewayOptions{CertDir: t.TempDir()})
	require.ErrorContains(t, err, "reading gateway key")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), []byte("not pem"), 0o600))
	_, err = NewGateway(GatewayOptions{CertDir: dir})
	require.ErrorContains(t, err, "no PEM block found")

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	_, err = NewGateway(GatewayOptions{CertDir: dir})
	require.ErrorContains(t, err, "want RSA")
}
