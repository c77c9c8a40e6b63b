//! Against a real dockerd (Debian's docker.io), started by the tests.
