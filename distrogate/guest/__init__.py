"""Guest control over the QEMU guest agent: the transport, Machine verbs, a testinfra backend."""
