package config

// Error is a configuration that parsed and validated but that the system
// it names refuses: a status name ThreatQ does not have, a signature type
// it lacks. Services return it (wrapped or not) so that commands report it
// as they report a variable that does not parse, and exit with the usage
// status: nothing started.
type Error struct {
	// Err is the problems, one a line.
	Err error
}

// Error returns the problems, one a line.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }
