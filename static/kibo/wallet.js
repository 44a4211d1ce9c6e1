// Sign in with the browser's wallet: EIP-1193 (window.ethereum) and EIP-4361. No wallet SDK.
"use strict";

(function () {
  const section = document.getElementById("sign-in");
  if (!section) return;
  const button = section.querySelector("[data-sign-in]");
  const status = section.querySelector("[data-status]");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const text = (name) => section.dataset["text" + name[0].toUpperCase() + name.slice(1)];
  const say = (message) => { status.textContent = message; };

  button.addEventListener("click", async () => {
    if (!window.ethereum) {
      section.querySelector("[data-no-wallet]").hidden = false;
      return;
    }
    button.disabled = true;
    try {
      say(text("connecting"));
      const [address] = await window.ethereum.request({ method: "eth_requestAccounts" });
      const chainId = parseInt(await window.ethereum.request({ method: "eth_chainId" }), 16);
      const query = new URLSearchParams({ address, chain_id: String(chainId) });
      const prepared = await fetch(`${section.dataset.nonceUrl}?${query}`, {
        credentials: "same-origin",
      });
      const { message, error } = await prepared.json();
      if (!prepared.ok) throw new Error(error);
      say(text("signing"));
      const signature = await window.ethereum.request({
        method: "personal_sign",
        params: [message, address],
      });
      say(text("checking"));
      const answer = await fetch(section.dataset.loginUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf },
        body: new URLSearchParams({ message, signature }),
      });
      const result = await answer.json();
      if (!answer.ok) throw new Error(result.error);
      window.location.assign(section.dataset.next || section.dataset.homeUrl);
    } catch (problem) {
      const rejected = problem && problem.code === 4001;
      say(rejected ? text("rejected") : `${text("failed")} ${problem.message || problem}`);
      button.disabled = false;
    }
  });
})();
