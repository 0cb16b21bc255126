package lighthouse

import (
	"encoding/json"
	"fmt"
	"time"
)

// Where Register, Members, Instances and Services keep instances: in
// lighthouse's own layout or in Apache Curator's ServiceDiscovery registry.

// servicesPath holds one node per service, each with one ephemeral child per
// registered instance, named by its ID and holding its data:
// /services/<service>/<id>. It is relative to the session's chroot, which is
// how applications keep their services apart.
const servicesPath = "/services"

// RegistryOption chooses the registry that Register, Members, Instances and
// Services use. The default is lighthouse's own: /services/<service>/<id>,
// holding the Node's data as it is.
type RegistryOption func(*registryOptions)

type registryOptions struct {
	base    string // the node holding one node per service
	curator bool   // instances are Curator ServiceInstance JSON
	err     error
}

// CuratorFormat uses the registry of Apache Curator's ServiceDiscovery with
// basePath (as given to ServiceDiscoveryBuilder.basePath, under the
// session's chroot): instance nodes basePath/<service>/<id> holding
// Curator's ServiceInstance JSON.
//
// Register then takes a Node whose Data is a ServiceInstance's JSON (from
// json.Marshal): an empty Name is set to the service, an empty ID to the
// Node's ID, a zero RegistrationTime to now and an empty ServiceType to
// DYNAMIC; other values must match (ErrInvalidInstance). Members and
// Instances deliver Nodes with the instance's node's name as ID and its
// JSON as Data, as Curator wrote it: decode it with DecodeServiceInstance.
// The name is the instance's ID except for Curator's DYNAMIC_SEQUENTIAL
// instances, whose node name has a sequence number appended (the decoded
// ServiceInstance's ID is Curator's).
// A node that does not decode is left out, with an EventError naming it;
// the other instances are delivered as usual.
//
// Registration.Update is Curator's updateService: it rewrites the
// instance's JSON, which Curator's ServiceCache and queryForInstances read.
// Members and Balancer deliver an instance changed by updateService (or
// Update) in their next set, as for lighthouse's own registry.
func CuratorFormat(basePath string) RegistryOption {
	return func(o *registryOptions) {
		if err := validatePath(basePath); err != nil {
			o.err = fmt.Errorf("%w: curator base path: %w", ErrInvalidOption, err)
			return
		}
		o.base, o.curator = basePath, true
	}
}

func newRegistryOptions(opts []RegistryOption) (registryOptions, error) {
	o := registryOptions{base: servicesPath}
	for _, opt := range opts {
		if opt == nil {
			return o, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		opt(&o)
	}
	return o, o.err
}

// servicePath returns the node of a service after checking its name.
func (o registryOptions) servicePath(service string) (string, error) {
	if err := validateName("service", service); err != nil {
		return "", err
	}
	return joinPath(o.base, service), nil
}

// encode returns the data Register writes for instance id of service.
func (o registryOptions) encode(service, id string, data []byte) ([]byte, error) {
	if !o.curator {
		return data, nil
	}
	i, err := decodeServiceInstance(data)
	if err != nil {
		return nil, err
	}
	filled := false
	fill := func(field *string, v string) error {
		switch *field {
		case "":
			*field, filled = v, true
		case v:
		default:
			return fmt.Errorf("%w: %q, want %q", ErrInvalidInstance, *field, v)
		}
		return nil
	}
	if err := fill(&i.Name, service); err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if err := fill(&i.ID, id); err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	st := string(i.ServiceType)
	if err := fill(&st, string(ServiceTypeDynamic)); err != nil {
		return nil, fmt.Errorf("service type (Register's nodes are ephemeral): %w", err)
	}
	i.ServiceType = ServiceType(st)
	if i.RegistrationTime.IsZero() {
		i.RegistrationTime, filled = time.Now(), true
	}
	if !filled {
		return data, nil // as the caller wrote it, fields we do not know included
	}
	known, err := json.Marshal(i)
	if err != nil {
		return nil, err
	}
	return withUnknownKeys(known, data)
}

// check reports why a member's data cannot be delivered, nil if it can.
func (o registryOptions) check(data []byte) error {
	if !o.curator {
		return nil
	}
	_, err := decodeServiceInstance(data)
	return err
}

// skip emits the EventError of a member whose data is left out.
func (s *Session) skip(path string, err error) {
	s.emit(Event{Type: EventError, SessionID: s.zk.SessionID(), Path: path, Err: &OpError{Op: "members", Path: path, Err: err}})
}
