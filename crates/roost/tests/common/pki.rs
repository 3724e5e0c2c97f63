//! Test certificates made with the `openssl` command: a CA, a `localhost`
//! server certificate and a client certificate.

use std::path::PathBuf;
use std::process::Command;

use roost_testkit::packets::unique_id;

/// `openssl req` arguments for a new P-256 key, unencrypted, written to
/// the path that follows.
const NEW_P256_KEY: &[&str] = &[
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
];

fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("these tests need the openssl command");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA, a `localhost` server certificate and a client certificate.
pub struct Pki {
    dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_id("roost-test-pki"));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Self { dir };
        let (ca, ca_key) = (pki.path("ca.crt"), pki.path("ca.key"));
        openssl(
            &[
                &["req", "-x509"][..],
                NEW_P256_KEY,
                &[
                    &ca_key,
                    "-out",
                    &ca,
                    "-subj",
                    "/CN=Roost test CA",
                    "-days",
                    "2",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        pki.issue(
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.issue(
            "client",
            "/O=Acme/CN=rumqttc-device",
            "extendedKeyUsage=clientAuth\n",
        );
        pki
    }

    /// `<name>.crt` and `<name>.key`: a certificate made the plain way,
    /// `openssl req -x509 -subj /CN=localhost`, which OpenSSL's default
    /// configuration marks as a CA (basicConstraints CA:TRUE).
    pub fn self_signed(&self, name: &str) {
        let (key, crt) = (
            self.path(&format!("{name}.key")),
            self.path(&format!("{name}.crt")),
        );
        openssl(
            &[
                &["req", "-x509"][..],
                NEW_P256_KEY,
                &[&key, "-out", &crt, "-subj", "/CN=localhost", "-days", "2"],
            ]
            .concat(),
        );
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn issue(&self, name: &str, subject: &str, extensions: &str) {
        let ext = self.path(&format!("{name}.ext"));
        std::fs::write(
            &ext,
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n{extensions}"),
        )
        .unwrap();
        let (key, csr, crt) = (
            self.path(&format!("{name}.key")),
            self.path(&format!("{name}.csr")),
            self.path(&format!("{name}.crt")),
        );
        openssl(
            &[
                &["req"][..],
                NEW_P256_KEY,
                &[&key, "-out", &csr, "-subj", subject],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &self.path("ca.crt"),
            "-CAkey",
            &self.path("ca.key"),
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(PathBuf::from(self.path(name))).unwrap()
    }
}
