require("/etc/evil")
