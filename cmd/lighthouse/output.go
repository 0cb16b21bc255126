package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lighthouse-zk/lighthouse"
)

// emitter prints values as text or JSON. After a write fails it prints
// nothing more, and err says why: scripts must not take a cut output for
// a whole one.
type emitter struct {
	w    io.Writer
	json bool
	err  error // the first failed write
}

func (e *emitter) print(v any, plain func(w io.Writer)) {
	if e.err != nil {
		return
	}
	w := &errWriter{w: e.w}
	if e.json {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "%s\n", b)
	} else {
		plain(w)
	}
	if w.err != nil {
		e.err = fmt.Errorf("writing the output: %w", w.err)
	}
}

// errWriter writes to w until a write fails, and keeps that error.
type errWriter struct {
	w   io.Writer
	err error
}

func (w *errWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	w.err = err
	return n, err
}

type participantJSON struct {
	jsonID
	Leader bool   `json:"leader"`
	Token  int64  `json:"token"`
	Node   string `json:"node"`
	jsonData
}

func toParticipantJSON(p lighthouse.Participant) participantJSON {
	j := participantJSON{jsonID: newJSONID(p.ID), Leader: p.IsLeader, Token: p.Token, Node: p.Node}
	if len(p.Data) > 0 {
		j.jsonData = newJSONData(p.Data)
	}
	return j
}

// jsonID is an ID in JSON as jsonData is data: "id" if it is UTF-8, else
// "id_base64". An ID is whatever bytes a participant stored; JSON would
// replace those that are not UTF-8.
type jsonID struct {
	ID       *string `json:"id,omitempty"`
	IDBase64 []byte  `json:"id_base64,omitempty"`
}

func newJSONID(id string) jsonID {
	if !utf8.ValidString(id) {
		return jsonID{IDBase64: []byte(id)}
	}
	return jsonID{ID: &id}
}

// jsonData is node data in JSON: text if it is UTF-8, else base64, so that
// bytes are never mistaken for text.
type jsonData struct {
	Data   *string `json:"data,omitempty"`
	Base64 []byte  `json:"data_base64,omitempty"`
}

func newJSONData(b []byte) jsonData {
	if !utf8.Valid(b) {
		return jsonData{Base64: b}
	}
	s := string(b)
	return jsonData{Data: &s}
}

// text shows s as it is if it is printable UTF-8, else quoted Go-style, so
// that names and data cannot break lines or send terminal escapes.
func text(s string) string {
	printable := func(r rune) bool { return strconv.IsPrint(r) && r != utf8.RuneError }
	if strings.IndexFunc(s, func(r rune) bool { return !printable(r) }) < 0 && !strings.HasPrefix(s, `"`) {
		return s
	}
	return strconv.Quote(s)
}

type nodeJSON struct {
	jsonID
	jsonData
}
