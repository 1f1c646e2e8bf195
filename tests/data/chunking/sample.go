package server

import "net/http"

// Server answers HTTP requests.
// It is safe for concurrent use.
type Server struct {
	addr string
}

type (
	// Handler handles one route.
	Handler interface {
		Serve(w http.ResponseWriter, r *http.Request)
	}
	Port int
)

// NewServer makes a Server.
func NewServer(addr string) *Server {
	return &Server{addr: addr}
}

// Handle answers one request.
func (s *Server) Handle(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
}

func (p Port) String() string {
	return "port"
}
