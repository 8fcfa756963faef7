API=http://localhost:3458
EMAIL="ada.$(date +%s%N)@example.com"
PASSWORD='correct horse battery staple'
curl -s -o /dev/null -X POST $API/users -H 'Content-Type: application/json' -d '{"name":"Ada","email":"'$EMAIL'","password":"'"$PASSWORD"'"}'
until MAIL=$(grep -l "^To: $EMAIL" .data/mail/*.eml 2>/dev/null); do sleep 0.2; done   # no SMTP_URL: mail lands in .data/mail (docs/accounts.md)
curl -s -o /dev/null -w '%{http_code}\n' -X POST $API/auth/verify-email -H 'Content-Type: application/json' \
  -d '{"token":"'$(grep -h '^Token: ' $MAIL | cut -c8-)'"}'                     # 204: Ada's address is verified
