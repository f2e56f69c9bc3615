package dashboard

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// TestNewHandlerErrors covers the build mistakes Handler panics on, so that they fail here
// and never in a running node.
func TestNewHandlerErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		files fstest.MapFS
		error string
	}{
		{
			name:  "MissingAsset",
			files: fstest.MapFS{"static/index.html": {Data: []byte(`<script src="{{asset "gone.js"}}"></script>`)}},
			error: "index.html names missing assets [gone.js]",
		},
		{
			name:  "NoIndex",
			files: fstest.MapFS{"static/app.js": {Data: []byte("1")}},
			error: "reading index.html: open static/index.html: file does not exist",
		},
		{
			name: "UnknownContentType",
			files: fstest.MapFS{
				"static/index.html": {Data: []byte("x")},
				"static/data.bin":   {Data: []byte("1")},
			},
			error: "loading assets: no content type for static/data.bin",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newHandler(tt.files)
			require.EqualError(t, err, tt.error)
		})
	}

	t.Run("Embedded", func(t *testing.T) {
		t.Parallel()
		h, err := newHandler(staticFiles)
		require.NoError(t, err)
		require.Contains(t, string(h.index.body), `src="static/app.js?v=`+h.assets["app.js"].hash+`"`)
	})
}
