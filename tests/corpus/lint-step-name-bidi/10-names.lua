recipe "names" { step "right-to-left \u{202e}txt.exe" { function() end } }
