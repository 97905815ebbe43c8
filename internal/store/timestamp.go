package store

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// TimeLayout is the wire and storage format of timestamps: RFC 3339, UTC,
// always six fractional digits, so that text comparison is time order.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Timestamp is a UTC instant with microsecond precision.
type Timestamp struct{ time.Time }

// NewTimestamp truncates t to microseconds in UTC.
func NewTimestamp(t time.Time) Timestamp {
	return Timestamp{t.UTC().Truncate(time.Microsecond)}
}

// String formats the timestamp with TimeLayout.
func (t Timestamp) String() string { return t.UTC().Format(TimeLayout) }

// MarshalJSON implements json.Marshaler.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.String() + `"`), nil
}

// MarshalYAML implements yaml.Marshaler.
func (t Timestamp) MarshalYAML() (any, error) { return t.String(), nil }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("timestamp must be a string")
	}
	p, err := ParseTimestamp(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	*t = p
	return nil
}

// ParseTimestamp accepts RFC 3339 with or without fractional seconds.
func ParseTimestamp(s string) (Timestamp, error) {
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Timestamp{}, fmt.Errorf("invalid timestamp %q: want RFC 3339", s)
	}
	return NewTimestamp(p), nil
}

// Scan implements sql.Scanner for both backends: SQLite returns the text
// form, PostgreSQL a time.Time.
func (t *Timestamp) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*t = NewTimestamp(v)
		return nil
	case string:
		p, err := ParseTimestamp(v)
		*t = p
		return err
	case []byte:
		p, err := ParseTimestamp(string(v))
		*t = p
		return err
	}
	return fmt.Errorf("cannot scan %T into a timestamp", src)
}

// Value implements driver.Valuer with the text form, which both backends
// accept (PostgreSQL casts it to timestamptz).
func (t Timestamp) Value() (driver.Value, error) { return t.String(), nil }
