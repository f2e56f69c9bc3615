# Generated-code package; see internal/pyhost/doc.go.
