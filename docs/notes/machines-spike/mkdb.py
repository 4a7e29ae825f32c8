import json, sys
UD = """#cloud-config
write_files:
  - path: /etc/hello
    content: "hello from {id}\\n"
  - path: /srv/www/index.html
    content: "instance {id} at {ip}\\n"
runcmd:
  - [ systemd-run, --unit=hello-web, --property=Restart=always, python3, -m, http.server, "8000", --directory, /srv/www ]
"""
db = {}
for i, ip in enumerate(sys.argv[1:], 1):
    iid = f"i-0000000000000000{i}"
    db[ip] = {"user-data": UD.format(id=iid, ip=ip), "meta-data": {
        "ami-id": "ami-0000000000000base", "instance-id": iid, "instance-type": "t3.micro",
        "hostname": f"ip-{ip.replace('.', '-')}.ec2.internal", "local-hostname": f"ip-{ip.replace('.', '-')}.ec2.internal",
        "local-ipv4": ip, "mac": "02:00:00:00:00:0%d" % i,
        "placement": {"availability-zone": "us-east-1a", "region": "us-east-1"},
        "public-keys": {"0=webfleet": {"openssh-key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummyKeyForSpikeOnlyxxxxxxxxxxxxxxxxxxxxxx spike"}},
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }}
json.dump(db, open("/tmp/spike/imds.json", "w"), indent=1)
