// Package lighthouse gives Go services the ZooKeeper coordination recipes
// that Java services get from Apache Curator: leader election, service
// registration and discovery, client-side balancing and the double barrier,
// over one [Session] that handles connection loss and session expiry.
//
// Everything a recipe reports arrives on channels that carry the newest
// state and never block the session. Cancelling the context given to a
// recipe ends it (a leader resigns, a registration is removed); closing the
// Session ends them all.
//
// # How it is built
//
// Each piece of state has one goroutine that owns it; the others talk to it
// through mailboxes and hear from it through channels that never block.
//
//		user code ──calls──▶ Session ──requests──▶ zkclient owner ──frames──▶ ZooKeeper
//		    ▲                   │ run: session state                │ reader: decodes frames
//		    │                   ▼                                   │
//		    └── channels ◀── recipe loops (one goroutine each) ◀── watches
//
//	  - internal/zkclient is lighthouse's ZooKeeper client, written from the
//	    protocol. One owner goroutine holds the connection and the session
//	    (xids, pending requests, watches, the last zxid) under a mutex; a
//	    reader goroutine decodes frames and hands them over. When the owner
//	    is idle, a call sends its request itself and the reader delivers a
//	    watch notification itself, sparing a hop. Calls wait on their own
//	    reply channel or their context.
//	  - The Session (session.go) runs one goroutine, run, that turns the
//	    client's session events into Events and publishes the session's state
//	    to the recipes (connected, suspended, expired, closed).
//	  - The recipe runtime (recipe.go) is the one loop every recipe's
//	    goroutine runs: it subscribes to the session state, looks at ZooKeeper
//	    when a look is due and the session is connected, waits on the
//	    recipe's watches, retries with one backoff and reports the first
//	    result. A recipe file (election.go, membership.go, balancer.go,
//	    barrier.go) supplies only what it does when it looks; Members,
//	    MemberSets and Balancer share the follower of a service
//	    (memberset.go), which keeps its set as an immutable MemberSet (set.go).
//	  - Recipes reach the client through a narrow interface (client.go), so
//	    their state machines are also tested against a fake.
//	  - internal/actor holds the few generic pieces: mailbox, latest-value
//	    outbox, fan-out, goroutine group.
//
// Start reading at session.go (Connect, run, Close), then recipe.go, then
// the recipe you care about.
package lighthouse
