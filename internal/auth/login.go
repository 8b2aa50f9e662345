package auth

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// LoginMechanism is the name of the (obsolete but universal) SASL LOGIN mechanism.
const LoginMechanism = "LOGIN"

// LoginAuthenticator checks a user name and password received through SASL LOGIN.
type LoginAuthenticator func(username, password string) error

type loginState int

const (
	loginWantUser loginState = iota
	loginWantPassword
	loginDone
)

// NewLoginServer returns a server for the SASL LOGIN mechanism
// (draft-murchison-sasl-login-00), which go-sasl implements only as a client. The server
// challenges "Username:" then "Password:" and calls authenticate with both. An initial
// response, when given, is the user name.
func NewLoginServer(authenticate LoginAuthenticator) sasl.Server {
	return &loginServer{authenticate: authenticate}
}

type loginServer struct {
	authenticate LoginAuthenticator
	state        loginState
	username     string
}

var errLoginUnexpected = errors.New("sasl LOGIN: unexpected client response")

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case loginWantUser:
		if response == nil {
			return []byte("Username:"), false, nil
		}
		s.username = string(response)
		s.state = loginWantPassword
		return []byte("Password:"), false, nil
	case loginWantPassword:
		s.state = loginDone
		return nil, true, s.authenticate(s.username, string(response))
	default:
		return nil, true, errLoginUnexpected
	}
}
