package lighthouse

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"go.opentelemetry.io/otel/metric"
)

// DefaultSessionTimeout is the session timeout Connect asks for unless
// WithSessionTimeout says otherwise.
const DefaultSessionTimeout = 10 * time.Second

// Option configures Connect.
type Option func(*options)

type options struct {
	sessionTimeout time.Duration
	dialTimeout    time.Duration // 0: a third of the session timeout
	log            *slog.Logger
	authSet        bool
	authUser       string
	authPass       string
	acl            []ACL
	parentACL      []ACL
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	tls            *tls.Config
	meterProvider  metric.MeterProvider
	meterSet       bool
}

// WithSessionTimeout sets the session timeout to ask the server for (default
// 10 s). The server may shorten or lengthen it to fit its own bounds
// (minSessionTimeout, maxSessionTimeout); more than the protocol carries
// (2^31-1 ms, about 24.8 days) is asked as that. A connection is declared
// lost (Suspended) after two thirds of it without an answer from the server.
func WithSessionTimeout(d time.Duration) Option {
	return func(o *options) { o.sessionTimeout = d }
}

// WithDialTimeout bounds each attempt to reach one server: opening the TCP
// connection, the TLS handshake and ZooKeeper's handshake (default: a third
// of the session timeout, the granted one once the server has granted one,
// and at least 1 s before that).
// A server that accepts connections but does not answer costs at most this
// before the next one is tried.
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) { o.dialTimeout = d }
}

// WithLogger sends the session's and the ZooKeeper client's logs to l
// (default: discarded). Client chatter is logged at Debug level.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithDigestAuth authenticates every connection of the session with
// ZooKeeper's digest scheme as user:password, before any request. Unless
// WithACL says otherwise, nodes the library creates can then be read by
// anyone but changed only by this identity.
//
// ZooKeeper accepts any digest credentials: a wrong password is not an
// error at Connect, it is simply another identity, which then gets ErrNoAuth
// on nodes the intended one owns. Session.WhoAmI tells which identities the
// server holds for the session. An empty user or password is
// ErrInvalidOption.
func WithDigestAuth(user, password string) Option {
	return func(o *options) { o.authUser, o.authPass, o.authSet = user, password, true }
}

// WithACL sets the ACL of every node the library creates. The default is
// WorldACL(PermAll), or with WithDigestAuth, all permissions for that
// identity and read for anyone.
func WithACL(acl ...ACL) Option {
	return func(o *options) { o.acl = acl }
}

// WithParentACL sets the ACL of the shared nodes the recipes create above
// their own: an election's path and its ancestors, "/services" and each
// service's node, a barrier's path. Other identities must be able to create
// and delete their own nodes under these, so the default is all
// permissions for anyone, or with WithDigestAuth, all permissions for that
// identity and read, create and delete for anyone. (Nodes made by Create
// with CreateParents get the node's ACL instead.)
func WithParentACL(acl ...ACL) Option {
	return func(o *options) { o.parentACL = acl }
}

// WithDialer opens the session's TCP connections with dial instead of
// net.Dialer (for example through a proxy). With WithTLS, TLS runs over the
// connections it returns.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(o *options) { o.dial = dial }
}

// WithTLS makes every connection TLS with config, for servers that serve
// ZooKeeper's secure client port (secureClientPort). If config.ServerName
// is empty, the host name of the server being dialled is used.
func WithTLS(config *tls.Config) Option {
	return func(o *options) { o.tls = config }
}

// newOptions applies opts to the defaults and validates the result.
func newOptions(opts []Option) (options, error) {
	o := options{sessionTimeout: DefaultSessionTimeout, log: slog.New(slog.DiscardHandler)}
	o.dial = (&net.Dialer{}).DialContext
	for _, opt := range opts {
		if opt == nil {
			return o, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		opt(&o)
	}
	return o, o.validate()
}

func (o *options) validate() error {
	if o.sessionTimeout <= 0 {
		return fmt.Errorf("%w: session timeout %v is not positive", ErrInvalidOption, o.sessionTimeout)
	}
	if o.dialTimeout < 0 {
		return fmt.Errorf("%w: dial timeout %v is negative", ErrInvalidOption, o.dialTimeout)
	}
	if o.authSet && (o.authUser == "" || o.authPass == "") {
		return fmt.Errorf("%w: digest auth needs a user and a password", ErrInvalidOption)
	}
	if strings.Contains(o.authUser, ":") {
		return fmt.Errorf("%w: digest auth user contains ':'", ErrInvalidOption)
	}
	if o.log == nil {
		return fmt.Errorf("%w: nil logger", ErrInvalidOption)
	}
	if o.meterSet && o.meterProvider == nil {
		return fmt.Errorf("%w: nil meter provider", ErrInvalidOption)
	}
	if o.dial == nil {
		return fmt.Errorf("%w: nil dialer", ErrInvalidOption)
	}
	for _, acl := range [][]ACL{o.acl, o.parentACL} {
		if acl != nil && len(acl) == 0 {
			return fmt.Errorf("%w: empty ACL", ErrInvalidOption)
		}
	}
	return nil
}

// nodeACLs returns the ACL of the nodes the library creates and of the
// shared parents recipes create, with their defaults.
func (o *options) nodeACLs() (acl, parents []zkclient.ACL) {
	node, parent := o.acl, o.parentACL
	if node == nil {
		node = WorldACL(PermAll)
		if o.authSet {
			node = append(DigestACL(PermAll, o.authUser, o.authPass), WorldACL(PermRead)...)
		}
	}
	if parent == nil {
		parent = WorldACL(PermAll)
		if o.authSet {
			parent = append(DigestACL(PermAll, o.authUser, o.authPass), WorldACL(PermRead|PermCreate|PermDelete)...)
		}
	}
	return clientACL(node), clientACL(parent)
}

// MaxIDLength bounds participant and node IDs, in bytes.
const MaxIDLength = 1024

// RecipeOption configures a recipe's participant (Elect).
type RecipeOption func(*recipeOptions)

type recipeOptions struct {
	id    string
	idSet bool
	data  []byte
}

// WithID sets this participant's ID, which peers see (default: the host
// name). It is stored in the participant's node. An empty ID is
// ErrInvalidID.
func WithID(id string) RecipeOption {
	return func(o *recipeOptions) { o.id, o.idSet = id, true }
}

// WithData stores data in the participant's node beside its ID (Elect).
// Apache Curator peers read the whole node as the ID, so leave it out where
// Go and Java share an election.
func WithData(data []byte) RecipeOption {
	return func(o *recipeOptions) { o.data = data }
}

func newRecipeOptions(opts []RecipeOption) (recipeOptions, error) {
	var o recipeOptions
	for _, opt := range opts {
		if opt == nil {
			return o, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		opt(&o)
	}
	if !o.idSet {
		host, err := os.Hostname()
		if err != nil {
			return o, fmt.Errorf("%w: no WithID and no host name: %v", ErrInvalidID, err)
		}
		o.id = host
	}
	if err := validateID(o.id); err != nil {
		return o, err
	}
	return o, nil
}

func validateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(id), MaxIDLength)
	case strings.ContainsAny(id, "\x00/"):
		return fmt.Errorf("%w %s: contains NUL or '/'", ErrInvalidID, quote(id))
	}
	return nil
}
