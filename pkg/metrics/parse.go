package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Value is one metric value of an EMF line, with the dimensions of one of
// its dimension sets.
type Value struct {
	Namespace  string
	Name       string
	Unit       Unit
	Value      float64
	Dimensions map[string]string
	Time       time.Time
}

// ErrNotEMF reports a line without an "_aws" member: an ordinary log line.
var ErrNotEMF = errors.New("not an EMF line: no _aws member")

// Parse reads one log line as an EMF document and returns its values, one
// per metric and dimension set. It checks what CloudWatch checks: the line
// is one JSON object; _aws holds a numeric Timestamp and a non-empty
// CloudWatchMetrics array; every directive names a Namespace, has at most
// 30 dimensions per set and 100 metrics; every dimension is a string member
// of the line and every metric a number member (or an array of at most 100
// numbers, of which Parse returns the first).
func Parse(line []byte) ([]Value, error) {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	raw, ok := root["_aws"]
	if !ok {
		return nil, ErrNotEMF
	}
	var meta struct {
		Timestamp         *float64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  *string    `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name              *string `json:"Name"`
				Unit              Unit    `json:"Unit"`
				StorageResolution *int    `json:"StorageResolution"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("_aws is not the metadata object: %w", err)
	}
	if meta.Timestamp == nil {
		return nil, errors.New("_aws.Timestamp is missing")
	}
	ms := int64(*meta.Timestamp)
	if ms <= 0 || float64(ms) != *meta.Timestamp {
		return nil, fmt.Errorf("_aws.Timestamp %v is not milliseconds since the epoch", *meta.Timestamp)
	}
	if len(meta.CloudWatchMetrics) == 0 {
		return nil, errors.New("_aws.CloudWatchMetrics is missing or empty")
	}
	var out []Value
	for i, d := range meta.CloudWatchMetrics {
		if d.Namespace == nil || *d.Namespace == "" || len(*d.Namespace) > 255 {
			return nil, fmt.Errorf("directive %d: Namespace missing or not 1 to 255 characters", i)
		}
		if d.Dimensions == nil {
			return nil, fmt.Errorf("directive %d: Dimensions missing", i)
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > 100 {
			return nil, fmt.Errorf("directive %d: %d metrics, want 1 to 100", i, len(d.Metrics))
		}
		sets := make([]map[string]string, 0, len(d.Dimensions))
		for _, set := range d.Dimensions {
			if len(set) > 30 {
				return nil, fmt.Errorf("directive %d: a dimension set of %d dimensions, at most 30", i, len(set))
			}
			dims := map[string]string{}
			for _, name := range set {
				var v string
				if err := json.Unmarshal(root[name], &v); err != nil {
					return nil, fmt.Errorf("directive %d: dimension %q is not a string member of the line", i, name)
				}
				dims[name] = v
			}
			sets = append(sets, dims)
		}
		for _, m := range d.Metrics {
			if m.Name == nil || *m.Name == "" {
				return nil, fmt.Errorf("directive %d: a metric without a Name", i)
			}
			if m.StorageResolution != nil && *m.StorageResolution != 1 && *m.StorageResolution != 60 {
				return nil, fmt.Errorf("metric %s: StorageResolution %d, want 1 or 60", *m.Name, *m.StorageResolution)
			}
			v, err := number(root[*m.Name])
			if err != nil {
				return nil, fmt.Errorf("metric %s: %w", *m.Name, err)
			}
			for _, dims := range sets {
				out = append(out, Value{Namespace: *d.Namespace, Name: *m.Name, Unit: m.Unit, Value: v, Dimensions: dims, Time: time.UnixMilli(ms)})
			}
		}
	}
	return out, nil
}

// number reads a metric member: a JSON number or an array of 1 to 100.
func number(raw json.RawMessage) (float64, error) {
	if raw == nil {
		return 0, errors.New("no member of that name in the line")
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var fs []float64
	if err := json.Unmarshal(raw, &fs); err != nil || len(fs) == 0 || len(fs) > 100 {
		return 0, fmt.Errorf("the member %s is not a number or an array of 1 to 100 numbers", raw)
	}
	return fs[0], nil
}
