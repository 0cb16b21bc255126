package lighthouse

// Node is one registered instance of a service: its ID, unique within the
// service, and its data, typically an address such as "10.0.0.7:8080".
type Node struct {
	ID   string
	Data []byte
}
