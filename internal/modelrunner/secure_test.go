package modelrunner

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
)

// testCA issues certificates the way crunch-certificate does: a private CA,
// server certificates for model-node-<id>.crunchdao.internal and client
// certificates for the coordinator.
type testCA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		NotAfter:              time.Now().Add(time.Hour),
		NotBefore:             time.Now().Add(-time.Hour),
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, der: der, key: key, pool: pool}
}

// issue signs a leaf for dnsName (a server certificate) or, with no name, a
// client certificate.
func (ca *testCA) issue(t *testing.T, dnsName string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		NotAfter:     time.Now().Add(time.Hour),
		NotBefore:    time.Now().Add(-time.Hour),
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "coordinator"},
	}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.Subject.CommonName = dnsName
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// writeCertDir writes a SECURE_CERT_DIR: ca.crt plus the client key pair.
func writeCertDir(t *testing.T, ca *testCA, client tls.Certificate) string {
	t.Helper()
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	require.NoError(t, err)
	files := map[string][]byte{
		SecureCAFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der}),
		SecureCertFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Certificate[0]}),
		SecureKeyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
	}
	return dir
}

// ownershipHeaders are the response headers a model node sends: the message
// naming certPub (DER SPKI), model and hotkey, signed by wallet.
func ownershipHeaders(t *testing.T, wallet ed25519.PrivateKey, certPub []byte, modelID, hotkey string) metadata.MD {
	t.Helper()
	msg, err := json.Marshal(ServerOwnershipMessage{
		CertPub:   base64.StdEncoding.EncodeToString(certPub),
		ExpiresAt: 1_900_000_000,
		Hotkey:    hotkey,
		ModelID:   modelID,
	})
	require.NoError(t, err)
	return metadata.Pairs(
		SecureHeaderMessage, base64.StdEncoding.EncodeToString(msg),
		SecureHeaderSignature, base64.StdEncoding.EncodeToString(ed25519.Sign(wallet, msg)),
		SecureHeaderWallet, EncodeBase58(wallet.Public().(ed25519.PublicKey)),
	)
}

// startSecureHost serves the constant model over loopback TLS that requires
// a client certificate from ca, sending headers() on every response.
func startSecureHost(t *testing.T, ca *testCA, serverCert tls.Certificate, headers func() metadata.MD) int {
	t.Helper()
	send := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := grpc.SendHeader(ctx, headers()); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
	h, err := modelhost.New(modelhost.Config{
		Factory: exampleFactory(t, "constant"),
		ServerOptions: []grpc.ServerOption{
			grpc.Creds(credentials.NewTLS(&tls.Config{
				Certificates: []tls.Certificate{serverCert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    ca.pool,
				MinVersion:   tls.VersionTLS12,
			})),
			grpc.UnaryInterceptor(send),
		},
	})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = h.Serve(lis) }()
	t.Cleanup(func() { h.Stop(context.Background()) })
	return lis.Addr().(*net.TCPAddr).Port
}

// TestSecureMode runs the secure model protocol end to end against a real
// TLS server: only a model whose TLS key is vouched for by the cruncher's
// wallet, for this model and hotkey, over a chain from ca.crt, is used;
// anything else fails the connection and is reported as CONNECTION_FAILED.
func TestSecureMode(t *testing.T) {
	t.Parallel()

	const modelID, hotkey = "m1", "5Hotkey"
	ca := newTestCA(t)
	serverCert := ca.issue(t, SecureServerName(modelID))
	certPub := serverCert.Leaf.RawSubjectPublicKeyInfo
	_, wallet, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	walletB58 := EncodeBase58(wallet.Public().(ed25519.PublicKey))
	_, otherWallet, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	secure, err := NewSecure(SecureOptions{CertDir: writeCertDir(t, ca, ca.issue(t, ""))})
	require.NoError(t, err)

	good := ownershipHeaders(t, wallet, certPub, modelID, hotkey)
	badSignature := good.Copy()
	badSignature.Set(SecureHeaderSignature, base64.StdEncoding.EncodeToString(ed25519.Sign(otherWallet, []byte("something else"))))
	otherCA := newTestCA(t)
	// With TLS 1.3 the server judges the client's certificate after the
	// client's side of the handshake is done, so its alert races with the
	// client's first write: the reason the client sees varies (certificate
	// required, unknown authority, connection reset); that its connection
	// fails does not.
	const refusedByServer = "code = Unavailable desc = connection"

	tests := []struct {
		name    string
		headers metadata.MD
		// server defaults to serverCert, security to secure.
		server   *tls.Certificate
		security Security
		want     string // "" is the happy path
	}{
		{name: "Valid", headers: good},
		{
			name:    "WrongWallet",
			headers: ownershipHeaders(t, otherWallet, certPub, modelID, hotkey),
			want:    "is not the cruncher's wallet",
		},
		{name: "BadSignature", headers: badSignature, want: "signature does not verify"},
		{
			name:    "CertPubNotServed",
			headers: ownershipHeaders(t, wallet, ca.issue(t, SecureServerName(modelID)).Leaf.RawSubjectPublicKeyInfo, modelID, hotkey),
			want:    "cert_pub is not the key of the TLS certificate",
		},
		{
			name:    "WrongModelID",
			headers: ownershipHeaders(t, wallet, certPub, "m2", hotkey),
			want:    `model_id "m2" is not "m1"`,
		},
		{
			name:    "WrongHotkey",
			headers: ownershipHeaders(t, wallet, certPub, modelID, "5Other"),
			want:    `hotkey "5Other" is not the cruncher's hotkey`,
		},
		{name: "MissingHeaders", headers: metadata.MD{}, want: "missing response header " + SecureHeaderMessage},
		{
			name:    "ServerCertFromOtherCA",
			headers: good,
			server:  new(otherCA.issue(t, SecureServerName(modelID))),
			want:    "certificate signed by unknown authority",
		},
		{
			name:    "ServerCertForOtherModel",
			headers: good,
			server:  new(ca.issue(t, SecureServerName("m2"))),
			want:    "certificate is valid for " + SecureServerName("m2"),
		},
		{
			name:     "ClientWithoutCert",
			headers:  good,
			security: &Secure{rootCAs: ca.pool},
			want:     refusedByServer,
		},
		{
			name:     "ClientCertFromOtherCA",
			headers:  good,
			security: &Secure{cert: otherCA.issue(t, ""), rootCAs: ca.pool},
			want:     refusedByServer,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			server := serverCert
			if tt.server != nil {
				server = *tt.server
			}
			port := startSecureHost(t, ca, server, func() metadata.MD { return tt.headers })
			rep := &reports{}
			opts := testClientOptions(rep)
			opts.ConnectTimeout = 500 * time.Millisecond
			opts.Security = secure
			if tt.security != nil {
				opts.Security = tt.security
			}
			info := ModelInfo{
				CruncherHotkey: hotkey, CruncherWalletPubkey: walletB58,
				DeploymentID: modelID + "_1", Host: "127.0.0.1", ID: modelID, Port: port, State: StateRunning,
			}
			c, err := NewClient(info, opts)
			require.NoError(t, err)
			defer c.Close()

			err = c.Setup(t.Context())
			if tt.want == "" {
				require.NoError(t, err)
				for range 2 { // the second call takes the remembered-proof path
					res := c.Call(t.Context(), "predict", mustArgs(t, "BTC", 60, 15), nil)
					require.Equal(t, StatusSuccess, res.Status, "%v", res.Err)
					require.Equal(t, map[string]any{"value": 0.5}, res.Value)
				}
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, FailureConnectionFailed, c.Stats().Reported)
			require.Equal(t, ClientRetired, c.Stats().State)
		})
	}
}

// TestSecureModeServerChangesProof: a proof that stops verifying after
// Setup (the server behind the address changed) retires the model at the
// next call instead of counting it as a slow answer.
func TestSecureModeServerChangesProof(t *testing.T) {
	t.Parallel()

	const modelID = "m1"
	ca := newTestCA(t)
	serverCert := ca.issue(t, SecureServerName(modelID))
	_, wallet, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	secure, err := NewSecure(SecureOptions{CertDir: writeCertDir(t, ca, ca.issue(t, ""))})
	require.NoError(t, err)

	headers := ownershipHeaders(t, wallet, serverCert.Leaf.RawSubjectPublicKeyInfo, modelID, "")
	changed := ownershipHeaders(t, wallet, serverCert.Leaf.RawSubjectPublicKeyInfo, "m2", "")
	var calls atomic.Int32
	port := startSecureHost(t, ca, serverCert, func() metadata.MD {
		if calls.Add(1) > 1 {
			return changed
		}
		return headers
	})

	opts := testClientOptions(&reports{})
	opts.Security = secure
	info := ModelInfo{
		CruncherWalletPubkey: EncodeBase58(wallet.Public().(ed25519.PublicKey)),
		Host:                 "127.0.0.1", ID: modelID, Port: port, State: StateRunning,
	}
	c, err := NewClient(info, opts)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Setup(t.Context()))
	res := c.Call(t.Context(), "predict", mustArgs(t, "BTC", 60, 15), nil)
	require.Equal(t, StatusFailed, res.Status)
	require.ErrorContains(t, res.Err, `model_id "m2" is not "m1"`)
	require.Equal(t, FailureConnectionFailed, c.Stats().Reported)
}

func TestNewSecureFileErrors(t *testing.T) {
	t.Parallel()

	ca := newTestCA(t)
	for _, name := range []string{SecureCAFile, SecureCertFile, SecureKeyFile} {
		t.Run("Missing_"+name, func(t *testing.T) {
			t.Parallel()
			dir := writeCertDir(t, ca, ca.issue(t, ""))
			require.NoError(t, os.Remove(filepath.Join(dir, name)))
			_, err := NewSecure(SecureOptions{CertDir: dir})
			require.ErrorContains(t, err, "reading "+name)
		})
	}
	t.Run("CAIsNotPEM", func(t *testing.T) {
		t.Parallel()
		dir := writeCertDir(t, ca, ca.issue(t, ""))
		require.NoError(t, os.WriteFile(filepath.Join(dir, SecureCAFile), []byte("not pem"), 0o600))
		_, err := NewSecure(SecureOptions{CertDir: dir})
		require.ErrorContains(t, err, "parsing ca.crt")
	})
	t.Run("KeyDoesNotMatch", func(t *testing.T) {
		t.Parallel()
		dir := writeCertDir(t, ca, ca.issue(t, ""))
		other := writeCertDir(t, ca, ca.issue(t, ""))
		key, err := os.ReadFile(filepath.Join(other, SecureKeyFile))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, SecureKeyFile), key, 0o600))
		_, err = NewSecure(SecureOptions{CertDir: dir})
		require.ErrorContains(t, err, "parsing tls.crt and tls.key")
	})
}

func TestBase58(t *testing.T) {
	t.Parallel()

	tests := []struct {
		encoded string
		decoded []byte
	}{
		{"", []byte{}},
		{"1", []byte{0}},
		{"111", []byte{0, 0, 0}},
		{"2", []byte{1}},
		{"z", []byte{57}},
		{"21", []byte{58}},
		{"5Q", []byte{0xff}},
		{"LUv", []byte{0xff, 0xff}},
		// Bitcoin's test vectors.
		{"2NEpo7TZRRrLZSi2U", []byte("Hello World!")},
		{"USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z", []byte("The quick brown fox jumps over the lazy dog.")},
		{"11233QC4", []byte{0, 0, 0x28, 0x7f, 0xb4, 0xcd}},
		// The Solana system program: 32 zero bytes.
		{"11111111111111111111111111111111", make([]byte, 32)},
	}
	for _, tt := range tests {
		got, err := DecodeBase58(tt.encoded)
		require.NoError(t, err, tt.encoded)
		require.Equal(t, tt.decoded, got, tt.encoded)
		require.Equal(t, tt.encoded, EncodeBase58(tt.decoded))
	}

	for _, bad := range []string{"0", "O", "I", "l", "abc+"} {
		_, err := DecodeBase58(bad)
		require.ErrorContains(t, err, "invalid base58 character", bad)
	}

	// Random keys survive the round trip, leading zeros included.
	for i := range 200 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		b[0] = byte(i % 3) // some keys start with zero bytes
		if i%5 == 0 {
			b[1] = 0
		}
		got, err := DecodeBase58(EncodeBase58(b))
		require.NoError(t, err)
		require.True(t, bytes.Equal(b, got), "%x", b)
	}
}
