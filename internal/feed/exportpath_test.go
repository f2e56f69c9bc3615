package feed

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSafeExportPath(t *testing.T) {
	t.Parallel()

	root := filepath.Join("data", "backfill")
	ok := []string{"binance", "BTCUSDT", "candle", "1m", "2026-03-10.parquet"}
	tests := []struct {
		name    string
		root    string
		parts   []string
		wantErr string
	}{
		{name: "Absolute", root: root, parts: []string{"binance", "/etc", "candle", "1m", "a.parquet"}, wantErr: "subject"},
		{name: "Backslash", root: root, parts: []string{"binance", `..\x`, "candle", "1m", "a.parquet"}, wantErr: ".."},
		{name: "DotDot", root: root, parts: []string{"..", "BTCUSDT", "candle", "1m", "a.parquet"}, wantErr: `must not contain ".."`},
		{name: "DotDotInFile", root: root, parts: []string{"binance", "BTCUSDT", "candle", "1m", "..parquet"}, wantErr: `must not contain ".."`},
		{name: "DotFile", root: root, parts: []string{"binance", "BTCUSDT", "candle", "1m", ".parquet"}, wantErr: "file"},
		{name: "Empty", root: root, parts: []string{"binance", "", "candle", "1m", "a.parquet"}, wantErr: "subject"},
		{name: "EmptyRoot", root: " ", parts: ok, wantErr: "root is empty"},
		{name: "Hidden", root: root, parts: []string{".git", "BTCUSDT", "candle", "1m", "a.parquet"}, wantErr: "source"},
		{name: "LongName", root: root, parts: []string{"binance", "A23456789012345678901234567890123456789012345678901234567890123456", "candle", "1m", "a.parquet"}, wantErr: "subject"},
		{name: "NotParquet", root: root, parts: []string{"binance", "BTCUSDT", "candle", "1m", "a.csv"}, wantErr: "ending in .parquet"},
		{name: "NUL", root: root, parts: []string{"binance", "BTC\x00", "candle", "1m", "a.parquet"}, wantErr: "subject"},
		{name: "OK", root: root, parts: ok},
		{name: "Slash", root: root, parts: []string{"pyth", "BTC/USD", "candle", "1m", "a.parquet"}, wantErr: "subject"},
		{name: "Space", root: root, parts: []string{"binance", "BTC USDT", "candle", "1m", "a.parquet"}, wantErr: "subject"},
		{name: "TraversalInFile", root: root, parts: []string{"binance", "BTCUSDT", "candle", "1m", "../../x.parquet"}, wantErr: `must not contain ".."`},
		{name: "Unicode", root: root, parts: []string{"binance", "BTCUSDT", "cаndle", "1m", "a.parquet"}, wantErr: "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := SafeExportPath(tt.root, tt.parts[0], tt.parts[1], tt.parts[2], tt.parts[3], tt.parts[4])
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, filepath.Join("data", "backfill", "binance", "BTCUSDT", "candle", "1m", "2026-03-10.parquet"), got)
		})
	}
}
