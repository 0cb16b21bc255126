package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// console prints one timestamped status line per event, in colour when
// writing to a terminal.
type console struct {
	mu     sync.Mutex
	w      io.Writer
	start  time.Time
	colour bool
}

func newConsole(w io.Writer) *console {
	c := &console{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == "" {
			c.colour = true
		}
	}
	return c
}

// say prints a line from who ("" for the demo itself).
func (c *console) say(who, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if who != "" {
		who = c.paint("36", who) + " "
	}
	fmt.Fprintf(c.w, "%8.3fs  %s%s\n", time.Since(c.start).Seconds(), who, fmt.Sprintf(format, args...))
}

// step announces the next act of the scenario.
func (c *console) step(format string, args ...any) {
	c.say("", "%s", c.paint("1", "== "+fmt.Sprintf(format, args...)))
}

func (c *console) green(s string) string  { return c.paint("32", s) }
func (c *console) yellow(s string) string { return c.paint("33", s) }
func (c *console) red(s string) string    { return c.paint("31", s) }

func (c *console) paint(code, s string) string {
	if !c.colour {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
