"""The DNF suite's library: a signed RPM repository built on the host, a fault-injecting HTTP
mirror run inside the lab's network namespace, dnf's output classified, the fleet's retry
wrapper, and the judging of each fault class against the promoted image."""
