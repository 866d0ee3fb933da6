recipe "x" "steps"
