package cgapi

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// field is one name=value pair of a reply section. cgminer's clients index
// by name, but miner.php and the text form show fields in cgminer's order,
// so a section is an ordered list rather than a map.
type field struct {
	name string
	val  any // string, bool, int, int64, uint64, fixed; nil for a bare name
}

// fixed is a float printed with a set number of decimals, as cgminer does
// (%.2f for MHS, %.8f for difficulties).
type fixed struct {
	v    float64
	prec int
}

func f2(v float64) fixed { return fixed{v, 2} }
func f3(v float64) fixed { return fixed{v, 3} }
func f4(v float64) fixed { return fixed{v, 4} }
func f6(v float64) fixed { return fixed{v, 6} }
func f8(v float64) fixed { return fixed{v, 8} }

// pct is 100*n/d, 0 when d is 0 (cgminer's convention for an empty ratio),
// printed %.4f as cgminer prints a percentage.
func pct(n, d float64) fixed {
	if d <= 0 {
		return f4(0)
	}
	return f4(100 * n / d)
}

type record []field

func (r *record) add(name string, v any) { *r = append(*r, field{name, v}) }

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// section is a named list of records: "SUMMARY", "DEVS", "POOLS".
type section struct {
	name    string
	indexed bool // each record opens with its own key ("GPU=0"), not the section name
	recs    []record
}

// reply is one command's answer: the STATUS record and its sections.
type reply struct {
	status   record
	sections []section
}

func scalar(v any) (text string, jsonText string) {
	switch x := v.(type) {
	case string:
		b := new(bytes.Buffer)
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(x)
		return x, strings.TrimSuffix(b.String(), "\n")
	case bool:
		s := strconv.FormatBool(x)
		return s, s
	case int:
		s := strconv.Itoa(x)
		return s, s
	case int64:
		s := strconv.FormatInt(x, 10)
		return s, s
	case uint64:
		s := strconv.FormatUint(x, 10)
		return s, s
	case fixed:
		f := x.v
		if math.IsNaN(f) || math.IsInf(f, 0) {
			f = 0
		}
		s := strconv.FormatFloat(f, 'f', x.prec, 64)
		return s, s
	}
	panic("cgapi: unsupported field type")
}

// textEscape escapes the four characters the text form gives meaning to,
// as API 1.7+ does.
var textEscape = strings.NewReplacer(`\`, `\\`, `|`, `\|`, `,`, `\,`, `=`, `\=`)

func (r record) json(b *bytes.Buffer) {
	b.WriteByte('{')
	for i, f := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		_, name := scalar(f.name)
		_, v := scalar(f.val)
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(v)
	}
	b.WriteByte('}')
}

// text writes "NAME=value,...|". A field with no value is written as its
// name alone: the text form opens a SUMMARY or VERSION record that way.
func (r record) text(b *bytes.Buffer) {
	for i, f := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(textEscape.Replace(f.name))
		if f.val == nil {
			continue
		}
		v, _ := scalar(f.val)
		b.WriteByte('=')
		b.WriteString(textEscape.Replace(v))
	}
	b.WriteByte('|')
}

// jsonObject writes {"STATUS":[...],"SECTION":[...],"id":1}.
func (rp reply) jsonObject(b *bytes.Buffer) {
	b.WriteString(`{"STATUS":[`)
	rp.status.json(b)
	b.WriteByte(']')
	for _, s := range rp.sections {
		b.WriteString(`,"` + s.name + `":[`)
		for i, r := range s.recs {
			if i > 0 {
				b.WriteByte(',')
			}
			r.json(b)
		}
		b.WriteByte(']')
	}
	b.WriteString(`,"id":1}`)
}

// textForm writes "STATUS=S,...|GPU=0,...|GPU=1,...|". Records of a
// section without indices lead with the section's name ("SUMMARY,...").
func (rp reply) textForm(b *bytes.Buffer) {
	rp.status.text(b)
	for _, s := range rp.sections {
		for _, r := range s.recs {
			if !s.indexed {
				r = append(record{{name: s.name}}, r...)
			}
			r.text(b)
		}
	}
}
