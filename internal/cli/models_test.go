package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
)

// TestModelSecurity: each setting picks its mode, and a SECURE_CERT_DIR
// that lacks a file stops start-up naming the file rather than falling back
// to plaintext.
func TestModelSecurity(t *testing.T) {
	t.Parallel()

	security, err := modelSecurity(&config.Config{})
	require.NoError(t, err)
	require.Equal(t, modelrunner.Insecure{}, security)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, modelrunner.SecureCAFile), []byte("x"), 0o600))
	_, err = modelSecurity(&config.Config{SecureCertDir: dir})
	require.ErrorContains(t, err, "SECURE_CERT_DIR "+dir+": reading tls.crt")

	_, err = modelSecurity(&config.Config{GatewayCertDir: dir})
	require.ErrorContains(t, err, "GATEWAY_CERT_DIR: reading gateway key")
}
