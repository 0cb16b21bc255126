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

// emitter prints values as text or JSON.
type emitter struct {
	w    io.Writer
	json bool
}

func (e *emitter) print(v any, plain func(w io.Writer)) {
	if e.json {
		b, _ := json.Marshal(v)
		fmt.Fprintf(e.w, "%s\n", b)
		return
	}
	plain(e.w)
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
