// Package config loads tqflow's configuration from the environment, an
// optional env file and _FILE variants for secrets, and holds the [Secret]
// type that keeps credentials out of logs and errors.
package config
