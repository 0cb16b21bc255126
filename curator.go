package lighthouse

// Apache Curator compatibility: Go and Java services in one cluster.
//
// Elections. Elect's participants are Apache Curator LeaderLatch
// participants: a node "_c_<uuid>-latch-<10-digit sequence>" (Curator's
// protected ephemeral-sequential name), holding the participant's ID in
// UTF-8, queued by sequence number. Go participants and LeaderLatch
// instances (Curator 2.x to 5.x; tested with 5.4.0) on one path form one
// queue: one leader among all, in creation order, each side seeing the
// other's IDs (Participants, LeaderLatch.getParticipants). Leave WithData
// out where Java participates: Curator reads the whole node as the ID.
//
// Curator's LeaderSelector cannot share a path with either. It is an
// InterProcessMutex, whose nodes are named "-lock-" instead of "-latch-";
// each recipe sorts the other's nodes after all of its own (Curator sorts by
// what follows its own lock name, and a name without it sorts whole, after
// every digit), and lighthouse ignores nodes that are not latch nodes. A
// LeaderSelector and a LeaderLatch (or Elect) on one path would therefore
// both lead. Give a LeaderSelector its own path.
//
// Service discovery. With the CuratorFormat option, Register, Members,
// Instances and Services use the registry of Curator's ServiceDiscovery
// (curator-x-discovery 4.x and 5.x; tested with 5.4.0): an ephemeral node
// basePath/<service>/<instance id> holding the instance as Curator's
// JsonInstanceSerializer writes it (see ServiceInstance). lighthouse's own
// registry (/services/<service>/<id> holding raw data) stays the default: its
// nodes are smaller, its data needs no decoding, and it is what the CLI and
// Balancer follow.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ServiceType is a Curator ServiceInstance's type. Curator registers
// DYNAMIC instances as ephemeral nodes, DYNAMIC_SEQUENTIAL as
// ephemeral-sequential ones and the others as persistent nodes; Register
// writes DYNAMIC instances only.
type ServiceType string

// Curator's service types.
const (
	ServiceTypeDynamic           ServiceType = "DYNAMIC"
	ServiceTypeStatic            ServiceType = "STATIC"
	ServiceTypePermanent         ServiceType = "PERMANENT"
	ServiceTypeDynamicSequential ServiceType = "DYNAMIC_SEQUENTIAL"
)

// ServiceInstance is Apache Curator's ServiceInstance (curator-x-discovery),
// field for field. It marshals to and from the JSON that Curator's
// JsonInstanceSerializer writes and reads:
//
//	{"name":"orders","id":"orders-1","address":"10.0.0.7","port":8080,
//	 "sslPort":null,"payload":null,"registrationTimeUTC":1700000000000,
//	 "serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},...]}}
//
// A zero value stands for JSON null: Address "", Port and SSLPort 0, Payload
// nil, URISpec nil, ServiceType "" (and RegistrationTime zero for 0).
// Decoding reads what Curator's Jackson reads: a missing serviceType is
// DYNAMIC, a null "enabled" is false, and keys match exactly, nested ones
// too.
type ServiceInstance struct {
	Name    string // the service's name
	ID      string // the instance's ID, unique in the service: its node's name
	Address string // host name or IP address
	Port    int    // 0: none
	SSLPort int    // 0: none
	// Payload is the payload's JSON, kept byte for byte when decoded. Java
	// readers deserialize it into their payloadClass: a JSON object without
	// an "@class" member becomes a java.util.LinkedHashMap, which only a
	// payloadClass of Map (or Object) accepts; for a Java class C, write
	// {"@class":"C",...} as Jackson does.
	Payload          json.RawMessage
	RegistrationTime time.Time // registrationTimeUTC, in milliseconds
	ServiceType      ServiceType
	URISpec          URISpec
	// Enabled is Curator's "enabled" flag, written by Curator only when its
	// serializer's compatibleSerializationMode is off; nil leaves it out
	// (readers take it as true).
	Enabled *bool
}

// wireInstance is ServiceInstance as JSON, in Curator's field order.
type wireInstance struct {
	Name                string          `json:"name"`
	ID                  string          `json:"id"`
	Address             *string         `json:"address"`
	Port                *int32          `json:"port"`
	SSLPort             *int32          `json:"sslPort"`
	Payload             json.RawMessage `json:"payload"`
	RegistrationTimeUTC *int64          `json:"registrationTimeUTC"`
	ServiceType         *string         `json:"serviceType"`
	URISpec             *wireURISpec    `json:"uriSpec"`
	Enabled             *bool           `json:"enabled,omitempty"`
}

type wireURISpec struct {
	Parts []URIPart `json:"parts"`
}

// MarshalJSON writes i as Curator's JsonInstanceSerializer does, with every
// field present and nulls for the ones not set. It fails (ErrInvalidInstance)
// if Payload is not valid JSON or a port does not fit a Java int.
func (i ServiceInstance) MarshalJSON() ([]byte, error) {
	w := wireInstance{Name: i.Name, ID: i.ID, Enabled: i.Enabled}
	if i.Address != "" {
		w.Address = &i.Address
	}
	var err error
	if w.Port, err = javaInt("port", i.Port); err != nil {
		return nil, err
	}
	if w.SSLPort, err = javaInt("sslPort", i.SSLPort); err != nil {
		return nil, err
	}
	if len(i.Payload) > 0 {
		if !json.Valid(i.Payload) {
			return nil, fmt.Errorf("%w: payload is not JSON", ErrInvalidInstance)
		}
		w.Payload = i.Payload
	}
	ms := int64(0)
	if !i.RegistrationTime.IsZero() {
		ms = i.RegistrationTime.UnixMilli()
	}
	w.RegistrationTimeUTC = &ms
	if i.ServiceType != "" {
		st := string(i.ServiceType)
		w.ServiceType = &st
	}
	if i.URISpec != nil {
		w.URISpec = &wireURISpec{Parts: i.URISpec}
	}
	return json.Marshal(w)
}

func javaInt(field string, n int) (*int32, error) {
	if n == 0 {
		return nil, nil
	}
	if int(int32(n)) != n {
		return nil, fmt.Errorf("%w: %s %d does not fit a Java int", ErrInvalidInstance, field, n)
	}
	v := int32(n)
	return &v, nil
}

// UnmarshalJSON reads a ServiceInstance as Curator's JsonInstanceSerializer
// does: unknown fields are ignored, missing ones are zero. It fails on
// anything but a JSON object with fields of the right types, and on bytes
// that are not UTF-8, which Jackson refuses.
func (i *ServiceInstance) UnmarshalJSON(data []byte) error {
	var w wireInstance
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return fmt.Errorf("%w: null", ErrInvalidInstance)
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: not UTF-8, which Curator cannot read", ErrInvalidInstance)
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInstance, err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInstance, err)
	}
	if err := checkKeyCase(keys); err != nil {
		return err
	}
	*i = ServiceInstance{Name: w.Name, ID: w.ID, Enabled: w.Enabled}
	// As Jackson fills Curator's instance: a null for the primitive
	// "enabled" is false, and a missing "serviceType" is the default
	// constructor's DYNAMIC (a null one stays null).
	if raw, ok := keys["enabled"]; ok && bytes.Equal(raw, []byte("null")) {
		off := false
		i.Enabled = &off
	}
	if _, ok := keys["serviceType"]; !ok {
		i.ServiceType = ServiceTypeDynamic
	}
	if w.Address != nil {
		i.Address = *w.Address
	}
	if w.Port != nil {
		i.Port = int(*w.Port)
	}
	if w.SSLPort != nil {
		i.SSLPort = int(*w.SSLPort)
	}
	if len(w.Payload) > 0 && !bytes.Equal(w.Payload, []byte("null")) {
		i.Payload = w.Payload
	}
	if w.RegistrationTimeUTC != nil && *w.RegistrationTimeUTC != 0 {
		i.RegistrationTime = time.UnixMilli(*w.RegistrationTimeUTC).UTC()
	}
	if w.ServiceType != nil {
		i.ServiceType = ServiceType(*w.ServiceType)
	}
	if w.URISpec != nil {
		i.URISpec = URISpec(w.URISpec.Parts)
		if i.URISpec == nil {
			i.URISpec = URISpec{}
		}
	}
	return nil
}

// instanceKeys are the keys of Curator's JSON, which Jackson matches
// exactly; encoding/json matches them in any case.
var instanceKeys = []string{"name", "id", "address", "port", "sslPort", "payload", "registrationTimeUTC", "serviceType", "uriSpec", "enabled"}

// withUnknownKeys returns known, a JSON object of Curator's fields, with the
// members of orig (a valid JSON object) whose keys are not Curator's
// appended in orig's order: what a newer Curator or the application wrote
// beside them is kept.
func withUnknownKeys(known, orig []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(orig))
	if _, err := dec.Token(); err != nil { // {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInstance, err)
	}
	out := bytes.TrimSuffix(known, []byte("}"))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidInstance, err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidInstance, err)
		}
		key, _ := tok.(string)
		if slices.Contains(instanceKeys, key) {
			continue
		}
		name, _ := json.Marshal(key)
		out = append(append(append(append(out, ','), name...), ':'), value...)
	}
	return append(out, '}'), nil
}

// checkKeyCase fails on a key of an instance (keys, its members), or of its
// uriSpec and the parts in it, that encoding/json takes for one of
// Curator's but Curator's Jackson does not ("Name", "PORT", "Parts",
// "Variable"): Go and Java would read different instances.
func checkKeyCase(keys map[string]json.RawMessage) error {
	if err := keysAsCurator(keys, instanceKeys); err != nil {
		return err
	}
	var spec map[string]json.RawMessage
	if json.Unmarshal(keys["uriSpec"], &spec) != nil {
		return nil // null or missing (json.Unmarshal has checked the rest)
	}
	if err := keysAsCurator(spec, []string{"parts"}); err != nil {
		return err
	}
	var parts []map[string]json.RawMessage
	json.Unmarshal(spec["parts"], &parts)
	for _, p := range parts {
		if err := keysAsCurator(p, []string{"value", "variable"}); err != nil {
			return err
		}
	}
	return nil
}

// keysAsCurator fails on a key of keys that differs from one of want in
// case only.
func keysAsCurator(keys map[string]json.RawMessage, want []string) error {
	for k := range keys {
		for _, w := range want {
			if k != w && strings.EqualFold(k, w) {
				return fmt.Errorf("%w: key %q: Curator reads only %q", ErrInvalidInstance, k, w)
			}
		}
	}
	return nil
}

// DecodeServiceInstance decodes a Curator ServiceInstance, such as the Data
// of a Node delivered by Members or Instances with CuratorFormat. The error
// is an *OpError (Op "decode") wrapping ErrInvalidInstance.
func DecodeServiceInstance(data []byte) (ServiceInstance, error) {
	i, err := decodeServiceInstance(data)
	if err != nil {
		return i, codecError("decode", err)
	}
	return i, nil
}

// decodeServiceInstance is DecodeServiceInstance for errors wrapped once
// more.
func decodeServiceInstance(data []byte) (ServiceInstance, error) {
	var i ServiceInstance
	err := i.UnmarshalJSON(data)
	return i, err
}

// URI renders the instance's URISpec as Curator's buildUriSpec() does,
// "" if it has none: with "{scheme}://{address}:{port}", for example
// "http://10.0.0.7:8080" (or https, when an SSL port is set).
func (i ServiceInstance) URI() string {
	if i.URISpec == nil {
		return ""
	}
	scheme := "http"
	if i.SSLPort != 0 {
		scheme = "https"
	}
	num := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	ms := int64(0)
	if !i.RegistrationTime.IsZero() {
		ms = i.RegistrationTime.UnixMilli()
	}
	vars := map[string]string{
		"[": "{", "]": "}", "scheme": scheme,
		"name": i.Name, "id": i.ID, "address": i.Address,
		"port": num(i.Port), "ssl-port": num(i.SSLPort),
		"registration-time-utc": strconv.FormatInt(ms, 10),
		"service-type":          strings.ToLower(string(i.ServiceType)),
	}
	var b strings.Builder
	for _, p := range i.URISpec {
		if !p.Variable {
			b.WriteString(p.Value)
		} else {
			b.WriteString(vars[p.Value]) // unknown variables render as nothing
		}
	}
	return b.String()
}

// URIPart is one part of a URISpec: literal text, or the name of a variable.
type URIPart struct {
	Value    string `json:"value"`
	Variable bool   `json:"variable"`
}

// URISpec is Curator's UriSpec: a URI template such as
// "{scheme}://{address}:{port}", kept as Curator stores it, in parts. Its
// variables are scheme, name, id, address, port, ssl-port,
// registration-time-utc, service-type, and "[" and "]" for literal braces.
type URISpec []URIPart

// ParseURISpec parses a template as Curator's UriSpec(String) does: text
// between braces is a variable (trimmed), the rest literal text. Nested or
// unbalanced braces are an error: an *OpError (Op "parse uri spec")
// wrapping ErrInvalidInstance.
func ParseURISpec(template string) (URISpec, error) {
	spec, err := parseURISpec(template)
	if err != nil {
		return nil, codecError("parse uri spec", err)
	}
	return spec, nil
}

func parseURISpec(template string) (URISpec, error) {
	spec := URISpec{}
	inside := false
	for template != "" {
		i := strings.IndexAny(template, "{}")
		if i < 0 {
			i = len(template)
		}
		if i > 0 {
			tok := template[:i]
			if inside {
				tok = strings.TrimFunc(tok, func(r rune) bool { return r <= ' ' }) // Java's trim
			}
			spec = append(spec, URIPart{Value: tok, Variable: inside})
			template = template[i:]
			continue
		}
		if template[0] == '{' {
			if inside {
				return nil, fmt.Errorf("%w: { inside a variable", ErrInvalidInstance)
			}
			inside = true
		} else {
			if !inside {
				return nil, fmt.Errorf("%w: } without {", ErrInvalidInstance)
			}
			inside = false
		}
		template = template[1:]
	}
	if inside {
		return nil, fmt.Errorf("%w: variable not closed", ErrInvalidInstance)
	}
	return spec, nil
}

// String returns the spec as a template ("{scheme}://{address}:{port}").
func (u URISpec) String() string {
	var b strings.Builder
	for _, p := range u {
		if p.Variable {
			b.WriteString("{" + p.Value + "}")
		} else {
			b.WriteString(p.Value)
		}
	}
	return b.String()
}
