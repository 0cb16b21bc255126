package zktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Debian's layout: one jar whose manifest lists the rest of the classpath, and
// an optional slf4j binding that makes the server write its log.
const (
	debianJar   = "/usr/share/java/zookeeper.jar"
	debianSlf4j = "/usr/share/java/slf4j-simple.jar"
)

// ErrNoZooKeeper is wrapped by Start's error when neither $ZOOKEEPER_HOME
// nor Debian's zookeeper package provides ZooKeeper's jars.
var ErrNoZooKeeper = errors.New("zktest: ZooKeeper not found: run `apt-get install -y zookeeper` or set ZOOKEEPER_HOME to an unpacked ZooKeeper release")

// Classpath returns the Java classpath of a ZooKeeper server, for tests that
// start one of their own (with a configuration the kit does not write). It looks in
// $ZOOKEEPER_HOME first (its conf directory, *.jar and lib/*.jar), then at
// Debian's /usr/share/java/zookeeper.jar, adding slf4j-simple when present so
// that servers log. The error wraps ErrNoZooKeeper and says how to install it.
func Classpath() (string, error) {
	if home := os.Getenv("ZOOKEEPER_HOME"); home != "" {
		jars, _ := filepath.Glob(filepath.Join(home, "*.jar"))
		lib, _ := filepath.Glob(filepath.Join(home, "lib", "*.jar"))
		jars = append(jars, lib...)
		if len(jars) == 0 {
			return "", fmt.Errorf("%w (no jars in ZOOKEEPER_HOME=%s or its lib/)", ErrNoZooKeeper, home)
		}
		// conf/ holds the release's logging configuration.
		if fi, err := os.Stat(filepath.Join(home, "conf")); err == nil && fi.IsDir() {
			jars = append([]string{filepath.Join(home, "conf")}, jars...)
		}
		return strings.Join(jars, string(os.PathListSeparator)), nil
	}
	if _, err := os.Stat(debianJar); err != nil {
		return "", ErrNoZooKeeper
	}
	cp := debianJar
	if _, err := os.Stat(debianSlf4j); err == nil {
		cp += string(os.PathListSeparator) + debianSlf4j
	}
	return cp, nil
}

// javaPath finds the java launcher: $JAVA_HOME/bin/java, else java on $PATH.
func javaPath() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("zktest: java not found (set JAVA_HOME or install a JRE, e.g. `apt-get install -y default-jre-headless`): %w", err)
	}
	return p, nil
}
