package rules

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/edgegw/gateway/units"
)

// LoadTables reads the tables: inline ones as they are, CSV files (a
// relative path is taken from dir, the config file's directory) with
// their first column as the key and their second as the value (text).
// Errors are units.Errors at "tables.NAME".
func LoadTables(tables map[string]Table, dir string) (map[string]map[string]any, error) {
	out := make(map[string]map[string]any, len(tables))
	var es units.Errors
	for name, t := range tables {
		p := "tables." + name
		if t.CSV == "" {
			out[name] = t.Inline
			continue
		}
		path := t.CSV
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		m, err := readCSV(path, t.Header)
		if err != nil {
			es.Add(p+".csv", "%v", err)
			continue
		}
		out[name] = m
	}
	if len(es) > 0 {
		return nil, es
	}
	return out, nil
}

func readCSV(path string, header bool) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	m := map[string]any{}
	for row := 1; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		if header && row == 1 {
			continue
		}
		if len(rec) < 2 {
			return nil, fmt.Errorf("%s row %d: want key,value", filepath.Base(path), row)
		}
		if len(m) >= MaxTableRows {
			return nil, fmt.Errorf("%s: more than %d rows", filepath.Base(path), MaxTableRows)
		}
		m[rec[0]] = rec[1]
	}
}
