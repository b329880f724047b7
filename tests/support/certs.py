"""Certificates for the TLS tests, made with the openssl command line into
a temp dir: a test CA, server certificates for given names (signed by the
CA), client certificates, and a second CA for the "wrong CA" cases."""

import os
import subprocess


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class CA:
    """A certificate authority in <dir> (files <name>.pem / <name>.key)."""

    def __init__(self, dir, name="ca", cn="mqlb test CA"):
        self.dir = dir
        self.name = name
        self.cert = os.path.join(dir, name + ".pem")
        self.key = os.path.join(dir, name + ".key")
        self._serial = 0x1000
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key,
             "-out", self.cert, "-subj", "/CN=" + cn, "-days", "30",
             cwd=dir)

    def issue(self, name, cn, dns=(), client=False, serial=None,
              combined=True):
        """A certificate for <cn> with DNS SANs <dns>, signed by this CA.
        Returns (pem, key): with <combined> the PEM holds the chain's leaf
        and its key (key is then the same file)."""
        self._serial += 1
        serial = serial if serial is not None else self._serial
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            if dns:
                f.write("subjectAltName=" + ",".join("DNS:" + d for d in dns)
                        + "\n")
            f.write("extendedKeyUsage=%s\n"
                    % ("clientAuth" if client else "serverAuth"))
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn,
             cwd=self.dir)
        _run("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey",
             self.key, "-set_serial", str(serial), "-days", "30",
             "-extfile", ext, "-out", crt, cwd=self.dir)
        if not combined:
            return crt, key
        pem = os.path.join(self.dir, name + ".pem")
        with open(pem, "w") as out:
            for part in (crt, key):
                with open(part) as f:
                    out.write(f.read())
        return pem, pem


def serial_of(pem_bytes):
    """The serial number of a PEM certificate, as an int."""
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"],
                         input=pem_bytes, capture_output=True, check=True)
    return int(out.stdout.decode().strip().split("=", 1)[1], 16)
