"""The shipped catalogue's data: required platforms, real hosts of each platform, hosts that are
not platforms (school services, news, lookalikes), the children's-platform flag, bypass services
and the activity rules.

Host tables are written as one line of space-separated names per platform; each name is a
host seen in the platform's web or app traffic (page, API, CDN, media, telemetry).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.platforms.activity import request_activity
from monitor.platforms.catalogue import ACTIVITIES, Catalogue, Platform
from monitor.platforms.classify import Classifier

REQUIRED = set(
    """
    tiktok instagram snapchat youtube youtube-kids facebook messenger messenger-kids whatsapp
    twitter threads bluesky mastodon pinterest linkedin reddit discord twitch kick tumblr bereal
    telegram signal vk roblox lemon8 vsco quora character-ai zigazoo
""".split()
)

# made for children under 13: the only entries with designed_for_children
KIDS = set("youtube-kids messenger-kids zigazoo popjam grom-social kinzoo animal-jam".split())

ADULT_ONLY = set(
    """
    tinder bumble hinge grindr badoo omegle ometv chatroulette emerald-chat monkey azar uhmegle
    4chan replika janitorai ai-companions clubhouse ngl
""".split()
)

PLATFORM_HOSTS: dict[str, str] = {
    "tiktok": """www.tiktok.com m.tiktok.com vm.tiktok.com vt.tiktok.com us.tiktok.com
        api16-normal-c-useast1a.tiktokv.com api22-normal-c-useast2a.tiktokv.com api-h2.tiktokv.com
        mon.tiktokv.com mcs-va.tiktokv.com log16-normal-c-useast1a.tiktokv.com
        webcast16-normal-c-useast1a.tiktokv.com api16-normal-useast5.us.tiktokv.com
        api16-normal-no1a.tiktokv.eu p16-sign-va.tiktokcdn.com p77-sign-va.tiktokcdn.com
        v16-webapp-prime.tiktok.com v16m.tiktokcdn.com v19.tiktokcdn-us.com
        sf16-website-login.neutral.ttwstatic.com lf16-tiktok-web.ttwstatic.com
        mon-va.byteoversea.com
        sf16-scmcdn-sg.ibytedtos.com p16-tiktok-va-h2.ibyteimg.com libraweb-va.tiktok.com
        mssdk-va.tiktok.com im-api.tiktok.com webcast.tiktok.com api2.musical.ly log.isnssdk.com
        p16-tiktokcdn-com.akamaized.net v16m-default.akamaized.net tiktokcdn.liveplay.myqcloud.com
        ads.tiktok.com analytics.tiktok.com seller-us.tiktok.com""",
    "capcut": """www.capcut.com edit-api-sg.capcut.com editor-api.capcutapi.com
        sami-normal-sg.capcutapi.com lf16-capcut.faceulv.com""",
    "lemon8": """www.lemon8-app.com p16-va.lemon8cdn.com p16-sign-sg.lemon8cdn.com
        p16-lemon8-sign-sg.tiktokcdn.com""",
    "youtube": """www.youtube.com m.youtube.com youtu.be music.youtube.com studio.youtube.com
        i.ytimg.com i9.ytimg.com s.ytimg.com yt3.ggpht.com yt3.googleusercontent.com
        rr1---sn-8xgp1vo-p5qe.googlevideo.com redirector.googlevideo.com manifest.googlevideo.com
        youtubei.googleapis.com youtube.googleapis.com www.youtube-nocookie.com upload.youtube.com
        suggestqueries-clients6.youtube.com s.youtube.com youtube-ui.l.google.com www.youtube.de""",
    "youtube-kids": "www.youtubekids.com youtubekids.com kids.youtube.com",
    "facebook": """www.facebook.com m.facebook.com web.facebook.com mbasic.facebook.com
        graph.facebook.com b-graph.facebook.com connect.facebook.net static.xx.fbcdn.net
        scontent-lga3-1.xx.fbcdn.net video-lga3-1.xx.fbcdn.net external.xx.fbcdn.net
        star-mini.c10r.facebook.com upload.facebook.com rupload.facebook.com lookaside.fbsbx.com
        fb.me fb.watch fb.gg l.facebook.com pixel.facebook.com business.facebook.com
        fbcdn-profile-a.akamaihd.net""",
    "messenger": """www.messenger.com m.me edge-chat.messenger.com edge-chat.facebook.com
        edge-mqtt.facebook.com mqtt-mini.facebook.com upload.messenger.com""",
    "messenger-kids": "messengerkids.com www.messengerkids.com",
    "instagram": """www.instagram.com i.instagram.com b.i.instagram.com graph.instagram.com
        edge-chat.instagram.com gateway.instagram.com scontent.cdninstagram.com
        scontent-lga3-1.cdninstagram.com static.cdninstagram.com instagram.c10r.facebook.com
        help.instagram.com instagr.am ig.me l.instagram.com""",
    "threads": "www.threads.net threads.net www.threads.com threads.com graph.threads.net",
    "whatsapp": """web.whatsapp.com www.whatsapp.com static.whatsapp.net mmg.whatsapp.net
        media-lga3-1.cdn.whatsapp.net pps.whatsapp.net g.whatsapp.net graph.whatsapp.com
        crashlogs.whatsapp.net wa.me chat.whatsapp.com faq.whatsapp.com""",
    "twitter": """x.com twitter.com api.x.com api.twitter.com abs.twimg.com pbs.twimg.com
        video.twimg.com abs-0.twimg.com ton.twimg.com t.co upload.twitter.com upload.x.com
        platform.twitter.com syndication.twitter.com cdn.syndication.twimg.com pro.x.com
        static.ads-twitter.com prod-video-us-east-2.pscp.tv""",
    "bluesky": """bsky.app public.api.bsky.app api.bsky.app cdn.bsky.app video.bsky.app
        video.cdn.bsky.app bsky.social morel.us-east.host.bsky.network api.bsky.chat go.bsky.app
        plc.directory""",
    "mastodon": """mastodon.social files.mastodon.social mastodon.online mstdn.social mas.to
        media.mas.to mastodon.world fosstodon.org cdn.fosstodon.org hachyderm.io media.hachyderm.io
        infosec.exchange media.infosec.exchange joinmastodon.org api.joinmastodon.org
        cdn.masto.host techhub.social""",
    "pinterest": """www.pinterest.com i.pinimg.com s.pinimg.com v1.pinimg.com api.pinterest.com
        trk.pinterest.com ct.pinterest.com widgets.pinterest.com pin.it www.pinterest.co.uk
        pinterest.de www.pinterest.fr br.pinterest.com www.pinterest.ca www.pinterest.com.au
        www.pinterest.com.mx pinterest.jp pinterest.map.fastly.net""",
    "linkedin": """www.linkedin.com media.licdn.com static.licdn.com dms.licdn.com snap.licdn.com
        px.ads.linkedin.com platform.linkedin.com lnkd.in api.linkedin.com
        realtime.www.linkedin.com""",
    "reddit": """www.reddit.com old.reddit.com i.redd.it v.redd.it preview.redd.it
        external-preview.redd.it styles.redditmedia.com www.redditstatic.com gql.reddit.com
        gql-fed.reddit.com oauth.reddit.com w3-reporting.reddit.com matrix.redditspace.com
        reddit.app.link reddit.map.fastly.net reddit-uploaded-media.s3-accelerate.amazonaws.com""",
    "quora": """www.quora.com qph.cf2.quoracdn.net qsf.cf2.quoracdn.net qr.ae tch.quora.com
        es.quora.com""",
    "4chan": "boards.4chan.org i.4cdn.org s.4cdn.org sys.4chan.org boards.4channel.org",
    "amino": "aminoapps.com service.narvii.com pm1.narvii.com",
    "deviantart": """www.deviantart.com st.deviantart.net sta.sh
        images-wixmp-ed30a86b8c4ca887773594c2.wixmp.com""",
    "snapchat": """www.snapchat.com web.snapchat.com accounts.snapchat.com app.snapchat.com
        gcp.api.snapchat.com aws.api.snapchat.com cf-st.sc-cdn.net bolt-gcdn.sc-cdn.net
        tr.snapchat.com sc-static.net app-analytics-v2.snapchat.com story.snapchat.com
        map.snapchat.com snap.api.mapbox.com sdk.bitmoji.com feelinsonice-hrd.appspot.com
        kit.snapchat.com""",
    "discord": """discord.com discordapp.com cdn.discordapp.com media.discordapp.net
        images-ext-1.discordapp.net gateway.discord.gg discord.gg status.discord.com
        dl.discordapp.net latency.discord.media canary.discord.com
        discord-attachments-uploads-prd.storage.googleapis.com support.discord.com
        discordstatus.com 123456789012345678.discordsays.com""",
    "telegram": """telegram.org web.telegram.org venus.web.telegram.org t.me
        cdn4.telegram-cdn.org telegram.me telegra.ph core.telegram.org updates.tdesktop.com
        oauth.telegram.org telesco.pe""",
    "signal": """signal.org www.signal.org chat.signal.org cdn.signal.org cdn2.signal.org
        cdn3.signal.org storage.signal.org sfu.voip.signal.org updates.signal.org cdsi.signal.org
        svr2.signal.org signal.me signal.group textsecure-service.whispersystems.org
        signalcaptchas.org""",
    "groupme": "groupme.com web.groupme.com api.groupme.com image.groupme.com push.groupme.com",
    "wechat": """web.wechat.com wx.qq.com weixin.qq.com mp.weixin.qq.com short.weixin.qq.com
        res.wx.qq.com wx.qlogo.cn mmbiz.qpic.cn mmsns.qpic.cn servicewechat.com""",
    "line": """line.me access.line.me obs.line-apps.com legy.line-apps.com profile.line-scdn.net
        static.line-scdn.net lin.ee""",
    "kakaotalk": "kakao.com accounts.kakao.com katalk.kakao.com item.kakaocdn.net",
    "viber": "www.viber.com dl-media.viber.com media.cdn.viber.com invite.viber.com",
    "kik": "kik.com www.kik.com kik.me",
    "yubo": "yubo.live www.yubo.live api.yubo.live",
    "clubhouse": "www.clubhouse.com www.clubhouseapi.com joinclubhouse.com",
    "likee": "likee.video l.likee.video www.likee.video like.video",
    "triller": "triller.co www.triller.co api.triller.co",
    "vk": """vk.com m.vk.com api.vk.com sun9-1.userapi.com pp.userapi.com vk.me login.vk.com
        vkvideo.ru vk.ru id.vk.com cs1-2v4.vkuservideo.net stats.vk-portal.net""",
    "weibo": """weibo.com m.weibo.cn s.weibo.com api.weibo.com wx1.sinaimg.cn tvax1.sinaimg.cn
        passport.weibo.com f.video.weibocdn.com""",
    "rednote": "www.xiaohongshu.com edith.xiaohongshu.com sns-webpic-qc.xhscdn.com xhslink.com",
    "ngl": "ngl.link www.ngl.link",
    "twitch": """www.twitch.tv m.twitch.tv gql.twitch.tv static.twitchcdn.net
        static-cdn.jtvnw.net usher.ttvnw.net video-weaver.fra02.hls.ttvnw.net
        video-edge-c2a5b4.pdx01.abs.hls.ttvnw.net irc-ws.chat.twitch.tv pubsub-edge.twitch.tv
        eventsub.wss.twitch.tv spade.twitch.tv passport.twitch.tv id.twitch.tv api.twitch.tv
        clips.twitch.tv vod-secure.twitch.tv d2nvs31859zcd8.cloudfront.net
        video-weaver.sea02.hls.live-video.net ingest.global-contribute.live-video.net
        supervisor.ext-twitch.tv""",
    "kick": """kick.com www.kick.com files.kick.com stream.kick.com
        fa723fc1b171.us-west-2.playback.live-video.net""",
    "tumblr": """www.tumblr.com assets.tumblr.com 64.media.tumblr.com va.media.tumblr.com
        api.tumblr.com staff.tumblr.com tmblr.co""",
    "bereal": """bereal.com mobile.bereal.com cdn.bereal.network cdn-us1.bereal.network bere.al
        auth.bereal.team""",
    "vsco": "vsco.co www.vsco.co api.vsco.co im.vsco.co i.vsco.co",
    "roblox": """www.roblox.com web.roblox.com apis.roblox.com auth.roblox.com users.roblox.com
        friends.roblox.com presence.roblox.com thumbnails.roblox.com ecsv2.roblox.com
        realtime-signalr.roblox.com setup.rbxcdn.com c0.rbxcdn.com tr.rbxcdn.com js.rbxcdn.com
        assetdelivery.roblox.com clientsettingscdn.roblox.com create.roblox.com
        devforum.roblox.com roblox-api.arkoselabs.com ro.blox.com""",
    "steam": """store.steampowered.com steamcommunity.com api.steampowered.com
        login.steampowered.com cdn.akamai.steamstatic.com community.akamai.steamstatic.com
        avatars.akamai.steamstatic.com cache1-iad1.steamcontent.com steamcdn-a.akamaihd.net
        steamcommunity-a.akamaihd.net s.team steam-chat.com ext1-iad1.steamserver.net
        steambroadcast.akamaized.net images.steamusercontent.com""",
    "among-us": "among.us www.among.us innersloth.com matchmaker.among.us",
    "vrchat": "vrchat.com api.vrchat.cloud files.vrchat.cloud hello.vrchat.com",
    "character-ai": """character.ai beta.character.ai neo.character.ai plus.character.ai
        characterai.io c.ai""",
    "poe": "poe.com psc2.cf2.poecdn.net qph.cf2.poecdn.net",
    "replika": "replika.com my.replika.com replika.ai",
    "janitorai": "janitorai.com www.janitorai.com janitorai.chat",
    "ai-companions": "www.talkie-ai.com polybuzz.ai spicychat.ai crushon.ai chai.ml",
    "zigazoo": "zigazoo.com www.zigazoo.com api.zigazoo.com",
    "popjam": "popjam.com www.popjam.com api.popjam.com",
    "grom-social": "gromsocial.com www.gromsocial.com",
    "kinzoo": "kinzoo.com www.kinzoo.com",
    "animal-jam": "animaljam.com www.animaljam.com classic.animaljam.com",
    "tinder": "tinder.com api.gotinder.com images-ssl.gotinder.com",
    "bumble": "bumble.com us1.bumble.com",
    "hinge": "hinge.co prod-api.hingeaws.net",
    "grindr": "grindr.com grindr.mobi",
    "badoo": "badoo.com badoo.app",
    "omegle": "omegle.com www.omegle.com front1.omegle.com",
    "ometv": "ome.tv www.ome.tv",
    "chatroulette": "chatroulette.com www.chatroulette.com",
    "emerald-chat": "emeraldchat.com www.emeraldchat.com",
    "monkey": "monkey.app www.monkey.app",
    "azar": "azarlive.com www.azarlive.com",
    "uhmegle": "uhmegle.com www.uhmegle.com",
}

HOST_CASES = [(h, pid) for pid, hosts in PLATFORM_HOSTS.items() for h in hosts.split()]

# Hosts that must not be any platform or bypass service: the school's own services, the big
# companies' other services, generic CDNs, news, and lookalikes of platform names.
NON_SOCIAL = """
    www.google.com accounts.google.com classroom.google.com docs.google.com drive.google.com
    meet.google.com mail.google.com calendar.google.com sites.google.com forms.gle
    fonts.googleapis.com fonts.gstatic.com www.gstatic.com apis.google.com lh3.googleusercontent.com
    doc-0s-6k-docs.googleusercontent.com storage.googleapis.com classroom.googleapis.com
    oauth2.googleapis.com play.google.com update.googleapis.com safebrowsing.googleapis.com
    www.googletagmanager.com www.google-analytics.com translate.google.com gemini.google.com
    lh3.ggpht.com blogger.googleusercontent.com jnn-pa.googleapis.com
    login.microsoftonline.com www.office.com outlook.office365.com teams.microsoft.com
    www.microsoft.com onedrive.live.com login.live.com www.bing.com edge.microsoft.com github.com
    raw.githubusercontent.com copilot.microsoft.com www.minecraft.net
    www.apple.com www.icloud.com gateway.icloud.com apps.apple.com is1-ssl.mzstatic.com
    captive.apple.com mesu.apple.com
    www.amazon.com s3.amazonaws.com ec2.us-east-1.amazonaws.com d1a2b3c4d5e6f7.cloudfront.net
    m.media-amazon.com aws.amazon.com signin.aws.amazon.com
    www.khanacademy.org cdn.kastatic.org canvas.instructure.com k12.instructure.com
    du11hjcvx0uqb.cloudfront.net app.schoology.com asset-cdn.schoology.com clever.com
    www.ixl.com quizlet.com kahoot.it www.desmos.com www.geogebra.org newsela.com edpuzzle.com
    app.nearpod.com padlet.com www.canva.com www.duolingo.com studio.code.org scratch.mit.edu
    www.turnitin.com app.seesaw.me www.classdojo.com www.blooket.com www.prodigygame.com
    www.britannica.com pbskids.org www.nasa.gov www.collegeboard.org zoom.us us02web.zoom.us
    en.wikipedia.org upload.wikimedia.org www.wikipedia.org en.m.wikipedia.org
    www.nytimes.com www.cnn.com www.bbc.co.uk www.npr.org apnews.com www.reuters.com
    www.washingtonpost.com www.theguardian.com www.foxnews.com www.usatoday.com www.wsj.com
    news.yahoo.com www.msn.com news.google.com www.telegraph.co.uk
    duckduckgo.com www.mozilla.org detectportal.firefox.com www.dropbox.com slack.com
    www.paypal.com www.ebay.com www.netflix.com open.spotify.com www.espn.com weather.com
    cdnjs.cloudflare.com www.cloudflare.com cdn.jsdelivr.net code.jquery.com
    stackoverflow.com pypi.org replit.com chatgpt.com claude.ai www.notion.so www.adobe.com
    wordpress.com medium.com vimeo.com player.vimeo.com www.dailymotion.com soundcloud.com
    imgur.com i.imgur.com media.giphy.com media.tenor.com ocsp.digicert.com
    connectivitycheck.gstatic.com archive.ubuntu.com time.windows.com
    instanttelegram.com signalprocessingsociety.org notreddit.com xcom.example kick.example.org
    www.x.org kickstarter.com twitchy.com facebook.github.io react.dev whatsapp-plus.net
    discord.js.org snapcraft.io roblox.fandom.com line.com www.naver.com snapfish.com
    steamcharts.com www.threadless.com www.kik.co.uk mastodon.example tiktok.example
    d111111abcdef8.cloudfront.net random-name.akamaized.net someapp.appspot.com
    someapp.web.app example.app.link sub.translate.google.com map.kakao.example
    0a1b2c3d4e5f.us-east-1.playback.live-video.net abc.global-contribute.live-video.net
""".split()

BYPASS_CASES = [
    ("dns.google", "doh-google", "doh"),
    ("8888.google", "doh-google", "doh"),
    ("cloudflare-dns.com", "doh-cloudflare", "doh"),
    ("mozilla.cloudflare-dns.com", "doh-cloudflare", "doh"),
    ("chrome.cloudflare-dns.com", "doh-cloudflare", "doh"),
    ("one.one.one.one", "doh-cloudflare", "doh"),
    ("dns.cloudflare.com", "doh-cloudflare", "doh"),
    ("dns.quad9.net", "doh-quad9", "doh"),
    ("dns11.quad9.net", "doh-quad9", "doh"),
    ("dns.nextdns.io", "doh-nextdns", "doh"),
    ("anycast.dns.nextdns.io", "doh-nextdns", "doh"),
    ("dns.adguard-dns.com", "doh-adguard", "doh"),
    ("dns.adguard.com", "doh-adguard", "doh"),
    ("doh.opendns.com", "doh-opendns", "doh"),
    ("doh.familyshield.opendns.com", "doh-opendns", "doh"),
    ("doh.cleanbrowsing.org", "doh-cleanbrowsing", "doh"),
    ("dns.mullvad.net", "doh-mullvad", "doh"),
    ("freedns.controld.com", "doh-controld", "doh"),
    ("doh.dns.sb", "doh-dnssb", "doh"),
    ("zero.dns0.eu", "doh-other", "doh"),
    ("doh.libredns.gr", "doh-other", "doh"),
    ("nordvpn.com", "nordvpn", "vpn"),
    ("api.nordvpn.com", "nordvpn", "vpn"),
    ("downloads.nordcdn.com", "nordvpn", "vpn"),
    ("www.expressvpn.com", "expressvpn", "vpn"),
    ("account.protonvpn.com", "protonvpn", "vpn"),
    ("vpn-api.proton.me", "protonvpn", "vpn"),
    ("api.protonvpn.ch", "protonvpn", "vpn"),
    ("my.surfshark.com", "surfshark", "vpn"),
    ("windscribe.com", "windscribe", "vpn"),
    ("www.hotspotshield.com", "hotspot-shield", "vpn"),
    ("api.tunnelbear.com", "tunnelbear", "vpn"),
    ("www.privateinternetaccess.com", "pia", "vpn"),
    ("hide.me", "hideme", "vpn"),
    ("psiphon.ca", "psiphon", "vpn"),
    ("www.urban-vpn.com", "urban-vpn", "vpn"),
    ("mullvad.net", "mullvad", "vpn"),
    ("hola.org", "other-vpn", "vpn"),
    ("engage.cloudflareclient.com", "cloudflare-warp", "vpn"),
    ("mask.icloud.com", "icloud-private-relay", "proxy"),
    ("www.croxyproxy.com", "croxyproxy", "proxy"),
    ("www.proxysite.com", "proxysite", "proxy"),
    ("www.hidester.com", "hidester", "proxy"),
    ("www.kproxy.com", "kproxy", "proxy"),
    ("www.blockaway.net", "other-web-proxy", "proxy"),
    ("www-tiktok-com.translate.goog", "translate-proxy", "proxy"),
    ("www.torproject.org", "tor", "tor"),
    ("dist.torproject.org", "tor", "tor"),
]

# Suffixes that cover non-social services of the companies behind platforms, or generic CDNs.
FORBIDDEN_SUFFIXES = """
    google.com gstatic.com googleapis.com googleusercontent.com ggpht.com appspot.com
    apple.com icloud.com microsoft.com live.com office.com amazon.com amazonaws.com
    cloudfront.net akamaized.net akamaihd.net akamai.net edgekey.net fastly.net cloudflare.com
    cloudflare.net meta.com qq.com qpic.cn sinaimg.cn sina.com.cn daum.net naver.com
    proton.me opendns.com cleanbrowsing.org adguard.com app.link github.io
""".split()

# (method, host, path, expected activity); every rule in the catalogue is the first match of
# at least one case (test_every_activity_rule_is_reachable).
ACTIVITY_CASES = [
    ("GET", "www.tiktok.com", "/login/phone-or-email", "login"),
    ("POST", "www.tiktok.com", "/api/v1/web/project/create/", "upload"),
    ("GET", "im-ws.tiktok.com", "/ws/v2", "message"),
    ("POST", "api16-normal-c-useast1a.tiktokv.com", "/api/im/v1/message/send/", "message"),
    ("GET", "webcast.tiktok.com", "/webcast/room/enter/", "live"),
    ("GET", "webcast16-normal-c-useast1a.tiktokv.com", "/webcast/im/fetch/", "live"),
    ("GET", "www.tiktok.com", "/@example_user/live", "live"),
    ("POST", "www.tiktok.com", "/api/comment/publish/", "post"),
    (
        "GET",
        "v16-webapp-prime.tiktok.com",
        "/video/tos/useast2a/tos-useast2a-pve-0068/abc/",
        "stream",
    ),
    ("GET", "www.tiktok.com", "/@example_user", "view"),
    ("GET", "www.capcut.com", "/login", "login"),
    ("POST", "edit-api-sg.capcut.com", "/upload/v1/apply", "upload"),
    ("POST", "editor-api.capcutapi.com", "/lv/v1/template/publish", "post"),
    ("GET", "www.lemon8-app.com", "/login", "login"),
    ("PUT", "www.lemon8-app.com", "/api/media/upload", "upload"),
    ("POST", "www.lemon8-app.com", "/api/post/publish", "post"),
    ("GET", "rr3---sn-p5qlsnz6.googlevideo.com", "/videoplayback", "stream"),
    ("PUT", "upload.youtube.com", "/upload/youtubei", "upload"),
    ("POST", "www.youtube.com", "/youtubei/v1/comment/create_comment", "post"),
    ("GET", "www.youtube.com", "/live_chat", "live"),
    ("GET", "www.youtube.com", "/signin", "login"),
    ("GET", "www.youtube.com", "/watch", "view"),
    ("POST", "youtubei.googleapis.com", "/youtubei/v1/player", "view"),
    ("GET", "www.youtubekids.com", "/watch", "stream"),
    ("GET", "www.youtubekids.com", "/parent", "login"),
    ("POST", "www.facebook.com", "/login/device-based/regular/login/", "login"),
    ("POST", "rupload.facebook.com", "/fb_video/abc", "upload"),
    ("GET", "www.facebook.com", "/messages/t/123", "message"),
    ("GET", "www.facebook.com", "/live/producer", "live"),
    ("POST", "www.facebook.com", "/ajax/ufi/add_comment.php", "post"),
    ("GET", "video-lga3-1.xx.fbcdn.net", "/v/t42.1790-2/abc.mp4", "stream"),
    ("POST", "graph.facebook.com", "/graphql", "post"),  # no operation named: the strict default
    ("POST", "www.messenger.com", "/login/password/", "login"),
    ("POST", "upload.messenger.com", "/ajax/mercury/upload.php", "upload"),
    ("GET", "edge-chat.facebook.com", "/chat", "message"),
    ("GET", "www.messenger.com", "/t/1234567890", "message"),
    ("GET", "www.messengerkids.com", "/parent", "login"),
    ("POST", "www.messengerkids.com", "/api/messages", "message"),
    ("POST", "www.instagram.com", "/api/v1/web/accounts/login/ajax/", "login"),
    ("POST", "i.instagram.com", "/rupload_igphoto/fb_uploader_123", "upload"),
    ("GET", "edge-chat.instagram.com", "/chat", "message"),
    ("GET", "www.instagram.com", "/direct/inbox/", "message"),
    ("GET", "i.instagram.com", "/api/v1/live/123/info/", "live"),
    ("POST", "i.instagram.com", "/api/v1/media/configure/", "post"),
    ("GET", "scontent-lga3-1.cdninstagram.com", "/o1/v/t16/f2/m86/abc.mp4", "stream"),
    ("GET", "www.instagram.com", "/example_user/", "view"),
    ("GET", "www.threads.net", "/login", "login"),
    ("POST", "www.threads.net", "/rupload_igphoto/abc", "upload"),
    ("POST", "www.threads.net", "/api/v1/media/configure_text_only_post/", "post"),
    ("POST", "mmg.whatsapp.net", "/mms/image/abc", "upload"),
    ("GET", "web.whatsapp.com", "/ws/chat", "message"),
    ("GET", "g.whatsapp.net", "/", "message"),
    ("GET", "x.com", "/i/flow/login", "login"),
    ("POST", "upload.x.com", "/i/media/upload.json", "upload"),
    ("POST", "x.com", "/i/api/graphql/AbC123/CreateTweet", "post"),
    ("GET", "x.com", "/messages", "message"),
    ("GET", "prod-video-us-east-2.pscp.tv", "/Transcoding/v1/hls/abc/playlist.m3u8", "live"),
    ("GET", "x.com", "/i/spaces/1abcdef", "live"),
    ("GET", "video.twimg.com", "/ext_tw_video/123/pu/vid/avc1/720x1280/abc.mp4", "stream"),
    ("GET", "x.com", "/home", "view"),
    ("POST", "bsky.social", "/xrpc/com.atproto.server.createSession", "login"),
    ("POST", "bsky.social", "/xrpc/com.atproto.repo.uploadBlob", "upload"),
    ("GET", "api.bsky.chat", "/xrpc/chat.bsky.convo.listConvos", "message"),
    ("POST", "morel.us-east.host.bsky.network", "/xrpc/chat.bsky.convo.sendMessage", "message"),
    ("POST", "morel.us-east.host.bsky.network", "/xrpc/com.atproto.repo.createRecord", "post"),
    ("GET", "video.bsky.app", "/watch/did%3Aplc%3Aabc/bafk/playlist.m3u8", "stream"),
    ("POST", "mastodon.social", "/auth/sign_in", "login"),
    ("POST", "mastodon.social", "/api/v2/media", "upload"),
    ("POST", "mas.to", "/api/v1/statuses", "post"),
    ("GET", "fosstodon.org", "/api/v1/conversations", "message"),
    ("POST", "www.pinterest.com", "/resource/UserSessionResource/create/", "login"),
    ("GET", "www.pinterest.com", "/login/", "login"),
    ("POST", "www.pinterest.com", "/upload-image/", "upload"),
    ("POST", "www.pinterest.com", "/resource/ConversationMessagesResource/create/", "message"),
    ("POST", "www.pinterest.co.uk", "/resource/PinResource/create/", "post"),
    ("GET", "v1.pinimg.com", "/videos/mc/hls/ab/cd/abc.m3u8", "stream"),
    ("GET", "www.tumblr.com", "/login", "login"),
    ("POST", "www.tumblr.com", "/api/v2/media", "upload"),
    ("POST", "www.tumblr.com", "/api/v2/blog/example-blog/posts", "post"),
    ("GET", "www.tumblr.com", "/messaging", "message"),
    ("GET", "va.media.tumblr.com", "/tumblr_abc_720.mp4", "stream"),
    ("GET", "vsco.co", "/user/login", "login"),
    ("POST", "api.vsco.co", "/2.0/medias/upload", "upload"),
    ("GET", "api.vsco.co", "/api/2.0/conversations", "message"),
    ("POST", "auth.bereal.team", "/token", "login"),
    ("POST", "mobile.bereal.com", "/api/content/posts/upload-url", "upload"),
    ("POST", "mobile.bereal.com", "/api/content/posts", "post"),
    ("GET", "mobile.bereal.com", "/api/chat/conversations", "message"),
    ("POST", "www.linkedin.com", "/checkpoint/lg/login-submit", "login"),
    ("PUT", "www.linkedin.com", "/dms-uploads/abc/uploaded-image/0", "upload"),
    ("GET", "www.linkedin.com", "/messaging/thread/abc/", "message"),
    ("POST", "www.linkedin.com", "/voyager/api/contentcreation/normShares", "post"),
    ("GET", "dms.licdn.com", "/playlist/vid/abc/mp4-720p-30fp-crf28/0/123", "stream"),
    ("POST", "www.reddit.com", "/svc/shreddit/account/login", "login"),
    ("GET", "accounts.reddit.com", "/", "login"),
    ("PUT", "reddit-uploaded-media.s3-accelerate.amazonaws.com", "/", "upload"),
    ("GET", "matrix.redditspace.com", "/_matrix/client/v3/sync", "message"),
    ("GET", "www.reddit.com", "/message/inbox/", "message"),
    ("POST", "oauth.reddit.com", "/api/comment", "post"),
    ("GET", "v.redd.it", "/abc123/HLSPlaylist.m3u8", "stream"),
    ("GET", "www.reddit.com", "/r/learnprogramming/", "view"),
    ("GET", "www.quora.com", "/login", "login"),
    ("GET", "www.quora.com", "/messages", "message"),
    ("POST", "www.quora.com", "/answer/submit", "post"),
    ("POST", "sys.4chan.org", "/b/post", "post"),
    ("GET", "i.4cdn.org", "/wsg/1700000000000.webm", "stream"),
    ("POST", "service.narvii.com", "/api/v1/g/s/auth/login", "login"),
    ("POST", "service.narvii.com", "/api/v1/x123/s/chat/thread/abc/message", "message"),
    ("POST", "service.narvii.com", "/api/v1/x123/s/blog", "post"),
    ("GET", "www.deviantart.com", "/users/login", "login"),
    ("POST", "www.deviantart.com", "/_puppy/dashared/stash/submit", "upload"),
    ("POST", "www.deviantart.com", "/_puppy/dashared/comments/post", "post"),
    ("GET", "www.deviantart.com", "/notifications/notes", "message"),
    ("GET", "accounts.snapchat.com", "/accounts/v2/login", "login"),
    ("GET", "www.snapchat.com", "/login", "login"),
    ("POST", "web.snapchat.com", "/bq/upload", "upload"),
    (
        "POST",
        "web.snapchat.com",
        "/messagingcoreservice.MessagingCoreService/CreateContentMessage",
        "message",
    ),
    ("POST", "gcp.api.snapchat.com", "/bq/post_story", "post"),
    ("POST", "web.snapchat.com", "/rtc/duplex", "live"),
    ("POST", "discord.com", "/api/v9/auth/login", "login"),
    ("GET", "discord.com", "/login", "login"),
    (
        "PUT",
        "discord-attachments-uploads-prd.storage.googleapis.com",
        "/123/456/photo.png",
        "upload",
    ),
    ("POST", "discord.com", "/api/v9/channels/123456/attachments", "upload"),
    ("POST", "discord.com", "/api/v9/channels/123456/messages", "message"),
    ("GET", "gateway.discord.gg", "/", "message"),
    ("GET", "us-east1234.discord.media", "/", "live"),
    ("POST", "discord.com", "/api/v9/channels/123456/threads", "post"),
    ("GET", "discord.com", "/api/v9/channels/123456/messages", "view"),
    ("GET", "cdn.discordapp.com", "/attachments/1/2/photo.png", "view"),
    ("GET", "oauth.telegram.org", "/auth", "login"),
    ("GET", "venus.web.telegram.org", "/apiws", "message"),
    ("POST", "telegra.ph", "/upload", "upload"),
    ("POST", "api.telegra.ph", "/createPage", "post"),
    ("POST", "chat.signal.org", "/v1/verification/session", "login"),
    ("PUT", "cdn3.signal.org", "/attachments/abc", "upload"),
    ("GET", "chat.signal.org", "/v1/websocket/", "message"),
    ("GET", "sfu.voip.signal.org", "/v2/conference/participants", "live"),
    ("GET", "web.groupme.com", "/signin", "login"),
    ("POST", "image.groupme.com", "/pictures", "upload"),
    ("POST", "api.groupme.com", "/v3/groups/12345/messages", "message"),
    ("GET", "push.groupme.com", "/faye", "message"),
    ("GET", "login.wx.qq.com", "/jslogin", "login"),
    ("POST", "file.wx.qq.com", "/cgi-bin/mmwebwx-bin/webwxuploadmedia", "upload"),
    ("POST", "wx.qq.com", "/cgi-bin/mmwebwx-bin/webwxsendmsg", "message"),
    ("GET", "access.line.me", "/oauth2/v2.1/login", "login"),
    ("POST", "obs.line-apps.com", "/talk/m/upload.nhn", "upload"),
    ("POST", "legy.line-apps.com", "/S4", "message"),
    ("GET", "accounts.kakao.com", "/login", "login"),
    ("GET", "talk-pilsner.kakao.com", "/talk/chats", "message"),
    ("GET", "account.viber.com", "/", "login"),
    ("POST", "media.api.viber.com", "/upload", "upload"),
    ("GET", "pgws.viber.com", "/", "message"),
    ("GET", "webrtc.viber.com", "/", "live"),
    ("POST", "kik.com", "/auth/login", "login"),
    ("POST", "kik.com", "/upload", "upload"),
    ("GET", "kik.com", "/messages", "message"),
    ("POST", "api.yubo.live", "/v2/auth/login", "login"),
    ("GET", "api.yubo.live", "/v2/lives", "live"),
    ("GET", "api.yubo.live", "/v2/conversations", "message"),
    ("POST", "www.clubhouseapi.com", "/api/start_phone_number_auth", "login"),
    ("POST", "www.clubhouseapi.com", "/api/join_channel", "live"),
    ("POST", "www.clubhouseapi.com", "/api/send_message", "message"),
    ("GET", "likee.video", "/login", "login"),
    ("POST", "likee.video", "/api/upload", "upload"),
    ("GET", "likee.video", "/live/123", "live"),
    ("POST", "api.triller.co", "/user/auth", "login"),
    ("POST", "api.triller.co", "/api/upload", "upload"),
    ("GET", "id.vk.com", "/auth", "login"),
    ("POST", "pu.vk.com", "/c123/upload.php", "upload"),
    ("POST", "api.vk.com", "/method/messages.send", "message"),
    ("POST", "api.vk.com", "/method/wall.post", "post"),
    ("GET", "cs1-2v4.vkuservideo.net", "/p8/abc.720.mp4", "stream"),
    ("GET", "live-a.vkuserlive.com", "/hls/abc.m3u8", "live"),
    ("GET", "passport.weibo.com", "/sso/signin", "login"),
    ("POST", "weibo.com", "/ajax/statuses/update", "post"),
    ("POST", "picupload.weibo.com", "/interface/pic_upload.php", "upload"),
    ("GET", "f.video.weibocdn.com", "/o0/abc.mp4", "stream"),
    ("GET", "www.xiaohongshu.com", "/login", "login"),
    ("POST", "edith.xiaohongshu.com", "/api/sns/web/v1/comment/post", "post"),
    ("PUT", "ros-upload.xiaohongshu.com", "/spectrum/abc", "upload"),
    ("POST", "ngl.link", "/api/submit", "message"),
    ("GET", "ngl.link", "/login", "login"),
    ("GET", "passport.twitch.tv", "/login", "login"),
    ("GET", "www.twitch.tv", "/login", "login"),
    ("GET", "irc-ws.chat.twitch.tv", "/", "message"),
    ("GET", "video-weaver.fra02.hls.ttvnw.net", "/v1/playlist/abc.m3u8", "live"),
    ("GET", "d2nvs31859zcd8.cloudfront.net", "/abc_123/chunked/index-dvr.m3u8", "stream"),
    ("GET", "www.twitch.tv", "/directory", "view"),
    ("POST", "kick.com", "/mobile/login", "login"),
    ("POST", "kick.com", "/api/v2/messages/send/123456", "message"),
    (
        "GET",
        "fa723fc1b171.us-west-2.playback.live-video.net",
        "/api/video/v1/us-west-2.196233775518.channel.abc.m3u8",
        "live",
    ),
    ("GET", "stream.kick.com", "/ivs/v1/196233775518/abc/media/hls/master.m3u8", "stream"),
    ("POST", "kick.com", "/api/v2/clips", "upload"),
    ("POST", "auth.roblox.com", "/v2/login", "login"),
    ("GET", "www.roblox.com", "/login", "login"),
    ("GET", "chat.roblox.com", "/v2/get-user-conversations", "message"),
    ("POST", "apis.roblox.com", "/platform-chat-api/v1/send-messages", "message"),
    ("POST", "groups.roblox.com", "/v2/groups/12345/wall/posts", "post"),
    ("POST", "publish.roblox.com", "/v1/assets/upload", "upload"),
    ("GET", "www.roblox.com", "/games/123/example-game", "view"),
    ("POST", "login.steampowered.com", "/jwt/finalizelogin", "login"),
    ("GET", "store.steampowered.com", "/join/", "login"),
    ("GET", "steamcommunity.com", "/chat/", "message"),
    ("POST", "steamcommunity.com", "/comment/Profile/post/76561190000000000/-1/", "post"),
    ("GET", "steambroadcast.akamaized.net", "/broadcast/abc/segment.m4s", "live"),
    ("GET", "steamcommunity.com", "/broadcast/watch/76561190000000000", "live"),
    ("POST", "steamcommunity.com", "/sharedfiles/edititem/123", "upload"),
    ("POST", "backend.innersloth.com", "/api/user/auth", "login"),
    ("GET", "matchmaker.among.us", "/api/chat", "message"),
    ("GET", "api.vrchat.cloud", "/api/1/auth/user", "login"),
    ("POST", "api.vrchat.cloud", "/api/1/file", "upload"),
    ("POST", "api.vrchat.cloud", "/api/1/invite/usr_abc", "message"),
    ("GET", "character.ai", "/login", "login"),
    ("POST", "character.ai", "/chat/upload/", "upload"),
    ("GET", "neo.character.ai", "/ws/", "message"),
    ("POST", "neo.character.ai", "/turn/abc", "message"),
    ("GET", "poe.com", "/login", "login"),
    ("POST", "poe.com", "/api/file_upload", "upload"),
    ("POST", "poe.com", "/api/gql_POST", "message"),
    ("POST", "my.replika.com", "/api/mobile/1.5/auth/sign_in", "login"),
    ("GET", "my.replika.com", "/ws", "message"),
    ("GET", "janitorai.com", "/login", "login"),
    ("POST", "janitorai.com", "/chats/123", "message"),
    ("GET", "www.talkie-ai.com", "/login", "login"),
    ("POST", "api.polybuzz.ai", "/api/chat/completions", "message"),
    ("GET", "www.zigazoo.com", "/login", "login"),
    ("POST", "api.zigazoo.com", "/upload", "upload"),
    ("POST", "api.zigazoo.com", "/v1/responses", "post"),
    ("GET", "www.popjam.com", "/login", "login"),
    ("POST", "api.popjam.com", "/v1/comments", "post"),
    ("GET", "www.gromsocial.com", "/login", "login"),
    ("POST", "www.gromsocial.com", "/api/posts", "post"),
    ("GET", "www.kinzoo.com", "/login", "login"),
    ("GET", "api.kinzoo.com", "/v1/chats", "message"),
    ("GET", "www.animaljam.com", "/login", "login"),
    ("GET", "www.animaljam.com", "/chat", "message"),
    ("POST", "api.gotinder.com", "/v2/auth/login/sms", "login"),
    ("POST", "api.gotinder.com", "/media", "upload"),
    ("GET", "api.gotinder.com", "/v2/matches/abc", "message"),
    ("GET", "bumble.com", "/get-started", "login"),
    ("POST", "us1.bumble.com", "/mwebapi.phtml", "message"),
    ("POST", "prod-api.hingeaws.net", "/auth/sms", "login"),
    ("GET", "prod-api.hingeaws.net", "/message/send", "message"),
    ("POST", "grindr.mobi", "/v8/sessions", "login"),
    ("GET", "grindr.mobi", "/v4/inbox", "message"),
    ("GET", "badoo.com", "/signin", "login"),
    ("GET", "badoo.com", "/messenger", "message"),
    ("POST", "front1.omegle.com", "/start", "live"),
    ("GET", "ome.tv", "/ws", "live"),
    ("GET", "chatroulette.com", "/signaling", "live"),
    ("GET", "www.emeraldchat.com", "/cable", "live"),
    ("POST", "www.emeraldchat.com", "/messages", "message"),
    ("GET", "monkey.app", "/match", "live"),
    ("GET", "azarlive.com", "/ws", "live"),
    ("GET", "uhmegle.com", "/video", "live"),
]


def _platforms(catalogue: Catalogue) -> list[Platform]:
    return [p for p in catalogue if not p.is_bypass]


def test_at_least_30_platforms_and_the_required_ones(catalogue: Catalogue) -> None:
    ids = {p.id for p in _platforms(catalogue)}
    assert len(ids) >= 30
    assert REQUIRED <= ids, sorted(REQUIRED - ids)


def test_every_platform_has_page_hosts_a_min_age_and_rules(catalogue: Catalogue) -> None:
    for p in _platforms(catalogue):
        assert p.page_hosts or p.page_suffixes, p.id
        assert p.min_age is not None, p.id
        assert p.activities, p.id
        assert p.owner and p.name, p.id
        assert p.bypass_kind is None, p.id


def test_page_hosts_classify_to_their_own_platform(
    catalogue: Catalogue, classifier: Classifier
) -> None:
    for p in catalogue:
        hosts = set(p.page_hosts) | {"www" + s for s in p.page_suffixes}
        for host in hosts:
            got = classifier.platform_of(host)
            assert got is not None and got.id == p.id, (p.id, host, got and got.id)
            assert got.is_page_host(host)


def test_every_platform_has_several_host_cases(catalogue: Catalogue) -> None:
    # the host table below covers every platform, with page and API/CDN names where known
    counted = {pid: len(hosts.split()) for pid, hosts in PLATFORM_HOSTS.items()}
    for p in _platforms(catalogue):
        assert counted.get(p.id, 0) >= 2, p.id
    assert set(PLATFORM_HOSTS) <= {p.id for p in catalogue}


@pytest.mark.parametrize(("host", "platform_id"), HOST_CASES)
def test_real_platform_hosts(classifier: Classifier, host: str, platform_id: str) -> None:
    assert classifier(host) == platform_id


@pytest.mark.parametrize("host", NON_SOCIAL)
def test_non_social_hosts_are_no_platform(classifier: Classifier, host: str) -> None:
    assert classifier(host) is None


@pytest.mark.parametrize(("host", "bypass_id", "kind"), BYPASS_CASES)
def test_bypass_hosts(classifier: Classifier, host: str, bypass_id: str, kind: str) -> None:
    p = classifier.platform_of(host)
    assert p is not None and p.id == bypass_id
    assert p.is_bypass and p.bypass_kind == kind


def test_bypass_entries_are_well_formed(catalogue: Catalogue) -> None:
    bypass = [p for p in catalogue if p.is_bypass]
    kinds = {p.bypass_kind for p in bypass}
    assert kinds == {"doh", "vpn", "proxy", "tor"}
    for p in bypass:
        assert p.category == "bypass" and not p.designed_for_children, p.id
        assert p.suffixes or p.hosts, p.id


def test_designed_for_children_only_on_kids_platforms(catalogue: Catalogue) -> None:
    flagged = {p.id for p in catalogue if p.designed_for_children}
    assert flagged == KIDS
    for p in catalogue:
        assert (p.category == "kids") == (p.id in KIDS), p.id
    # the general-audience versions of the kids' apps are not flagged
    assert not catalogue["youtube"].designed_for_children
    assert not catalogue["messenger"].designed_for_children
    assert not catalogue["roblox"].designed_for_children


@pytest.mark.parametrize("platform_id", sorted(ADULT_ONLY))
def test_adult_only_services(catalogue: Catalogue, platform_id: str) -> None:
    assert catalogue[platform_id].min_age == 18


@pytest.mark.parametrize(
    ("platform_id", "min_age"),
    [
        ("tiktok", 13),
        ("instagram", 13),
        ("snapchat", 13),
        ("youtube", 13),
        ("discord", 13),
        ("linkedin", 16),
        ("mastodon", 16),
        ("vk", 14),
        ("youtube-kids", 0),
        ("zigazoo", 0),
    ],
)
def test_min_ages(catalogue: Catalogue, platform_id: str, min_age: int) -> None:
    assert catalogue[platform_id].min_age == min_age


@pytest.mark.parametrize("suffix", FORBIDDEN_SUFFIXES)
def test_no_platform_claims_a_generic_suffix(
    catalogue: Catalogue, classifier: Classifier, suffix: str
) -> None:
    for p in catalogue:
        assert suffix not in p.suffixes, (p.id, suffix)
        assert not any(suffix.endswith("." + s) for s in p.suffixes), (p.id, suffix)
    assert classifier(suffix) is None
    assert classifier("unrelated-name." + suffix) is None


def test_exact_hosts_under_shared_cdns_are_listed_exactly(catalogue: Catalogue) -> None:
    # a platform's suffix never lies under a shared CDN suffix (the loader enforces it), and the
    # exact names the platforms keep there are real sub-names, not the CDN suffix itself
    for p in catalogue:
        for h in p.hosts:
            assert h not in catalogue.shared_cdn_suffixes, (p.id, h)


@pytest.mark.parametrize(("method", "host", "path", "expected"), ACTIVITY_CASES)
def test_activity_rules(
    classifier: Classifier, method: str, host: str, path: str, expected: str
) -> None:
    platform = classifier.platform_of(host)
    assert platform is not None, host
    got = request_activity(platform, method, host, path, {}, classifier.platform_of)
    assert got == expected


def _first_rule(platform: Platform, method: str, host: str, path: str) -> int | None:
    for i, rule in enumerate(platform.activities):
        if rule.matches(method, host, path, ""):
            return i
    return None


def test_every_activity_rule_is_reachable(catalogue: Catalogue, classifier: Classifier) -> None:
    """Each rule is the first match of some case: no rule is dead or shadowed by an earlier one.
    The real API requests of data/api_endpoints.yaml count as cases too."""
    api = yaml.safe_load((Path(__file__).parent / "data" / "api_endpoints.yaml").read_text())
    api_cases = [(m, h, path, a) for _, m, h, path, a, *_ in api["endpoints"]]
    hit: set[tuple[str, int]] = set()
    for method, host, path, _ in ACTIVITY_CASES + api_cases:
        p = classifier.platform_of(host)
        assert p is not None
        i = _first_rule(p, method, host, path)
        if i is not None:
            hit.add((p.id, i))
    missing = [
        (p.id, i, r.activity)
        for p in catalogue
        for i, r in enumerate(p.activities)
        if (p.id, i) not in hit
    ]
    assert not missing


def test_every_activity_kind_is_used_where_it_belongs(catalogue: Catalogue) -> None:
    used = {r.activity for p in catalogue for r in p.activities}
    # view is the default and embed comes from the fetch headers, never from a rule
    assert used == set(ACTIVITIES) - {"view", "embed"}
    expected_by_kind = {kind for *_, kind in ACTIVITY_CASES}
    assert used <= expected_by_kind


def test_rule_hosts_belong_to_their_platform(catalogue: Catalogue, classifier: Classifier) -> None:
    """A rule limited to hosts that classify elsewhere could never fire."""
    for p in catalogue:
        for rule in p.activities:
            names = set(rule.hosts) | {"any-name" + s for s in rule.host_suffixes}
            for host in names:
                got = classifier.platform_of(host)
                assert got is not None and got.id == p.id, (p.id, host, got and got.id)
